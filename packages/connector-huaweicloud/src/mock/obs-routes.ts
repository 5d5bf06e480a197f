import type { MockRequest, MockResponse, RouteTable } from '@syncproxy/testkit/mock';
import type { MockCredentials } from './aksk-verifier.js';
import { obsXmlError, verifyObsSignature } from './obs-verifier.js';
import type { MockHuaweiState } from './state.js';

export interface ObsRoutesContext {
  credentials: MockCredentials;
  now: () => number;
}

type Handler = (request: MockRequest, state: MockHuaweiState) => MockResponse | Promise<MockResponse>;

/**
 * OBS, path-style (`/<bucket>/<key>`), on its own loopback server: HEAD/PUT of
 * a bucket, ListObjects (prefix, marker, max-keys), GET of an object with a
 * `Range`, DELETE. Every request's OBS signature is checked first.
 */
export function obsRoutes(context: ObsRoutesContext): RouteTable<MockHuaweiState> {
  const signed =
    (handler: Handler): Handler =>
    (request, state) => {
      const key = request.params['*'];
      const refused = verifyObsSignature(
        request,
        request.params.bucket!,
        key,
        context.credentials,
        context.now(),
      );
      if (refused) {
        state.stats.signatureFailures++;
        return refused;
      }
      return handler(request, state);
    };
  const noBucket = (bucket: string) =>
    obsXmlError(404, 'NoSuchBucket', `The specified bucket ${bucket} does not exist`);

  return {
    'HEAD /:bucket': signed((request, state) =>
      state.buckets.has(request.params.bucket!)
        ? { status: 200, headers: { 'x-obs-bucket-location': state.region } }
        : { status: 404 },
    ),
    'PUT /:bucket': signed((request, state) => {
      const bucket = request.params.bucket!;
      if (state.buckets.has(bucket))
        return obsXmlError(
          409,
          'BucketAlreadyOwnedByYou',
          'Your previous request to create the named bucket succeeded and you already own it.',
        );
      const location = /<Location>([^<]*)<\/Location>/.exec(request.text())?.[1];
      if (location !== undefined && location !== state.region) {
        return obsXmlError(400, 'InvalidLocationConstraint', `location ${location} is not ${state.region}`);
      }
      state.buckets.set(bucket, new Map());
      return { status: 200, headers: { location: `/${bucket}` } };
    }),
    'GET /:bucket': signed((request, state) => {
      const bucket = request.params.bucket!;
      const objects = state.buckets.get(bucket);
      if (!objects) return noBucket(bucket);
      const prefix = request.query.get('prefix') ?? '';
      const marker = request.query.get('marker') ?? '';
      const maxKeys = Math.min(1000, Number(request.query.get('max-keys') ?? 1000));
      const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && k > marker).sort();
      const page = keys.slice(0, maxKeys);
      const truncated = keys.length > page.length;
      const contents = page
        .map((key) => {
          const o = objects.get(key)!;
          return `<Contents><Key>${escapeXml(key)}</Key><LastModified>${o.lastModified}</LastModified><Size>${o.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
        })
        .join('');
      return {
        status: 200,
        headers: { 'content-type': 'application/xml' },
        body: `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://obs.myhwclouds.com/doc/2015-06-30/"><Name>${bucket}</Name><Prefix>${escapeXml(prefix)}</Prefix><Marker>${escapeXml(marker)}</Marker><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${truncated ? `<NextMarker>${escapeXml(page[page.length - 1]!)}</NextMarker>` : ''}${contents}</ListBucketResult>`,
      };
    }),
    'GET /:bucket/*': signed((request, state) => {
      const bucket = request.params.bucket!;
      const objects = state.buckets.get(bucket);
      if (!objects) return noBucket(bucket);
      const object = objects.get(request.params['*']!);
      if (!object) return obsXmlError(404, 'NoSuchKey', 'The specified key does not exist.');
      const range = /^bytes=(\d+)-(\d*)$/.exec(String(request.headers.range ?? ''));
      let start = 0;
      let end = object.length - 1;
      if (request.headers.range !== undefined) {
        if (!range) return obsXmlError(416, 'InvalidRange', 'The requested range cannot be satisfied.');
        start = Number(range[1]);
        end = range[2] ? Math.min(Number(range[2]), object.length - 1) : object.length - 1;
        if (start > end) return obsXmlError(416, 'InvalidRange', 'The requested range cannot be satisfied.');
        state.stats.rangedGets++;
      }
      const body = object.source.read(object.offset + start, end - start + 1);
      state.stats.bytesServed += body.length;
      return {
        status: range ? 206 : 200,
        headers: {
          'content-type': 'binary/octet-stream',
          ...(range ? { 'content-range': `bytes ${start}-${end}/${object.length}` } : {}),
          etag: `"${object.key.length.toString(16)}"`,
        },
        body,
      };
    }),
    'DELETE /:bucket/*': signed((request, state) => {
      const objects = state.buckets.get(request.params.bucket!);
      if (!objects) return noBucket(request.params.bucket!);
      // OBS answers 204 whether or not the key existed.
      if (objects.delete(request.params['*']!)) state.stats.objectsDeleted++;
      return { status: 204 };
    }),
  };
}

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
