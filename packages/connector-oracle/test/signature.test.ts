import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { type MockOci, startMockOci } from '@syncproxy/connector-oracle/mock';
import { createDispatcher } from '@syncproxy/core';
import * as common from 'oci-common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface Signed {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** Signs a request the way OCI documents, with the header list and key given (not the SDK: to leave headers out). */
function signManually(
  oci: MockOci,
  request: { method: string; path: string; body?: string },
  options: { headers: string[]; privateKey?: string; date?: Date },
): Signed {
  const url = new URL(oci.url);
  const headers: Record<string, string> = {
    host: url.host,
    'x-date': (options.date ?? new Date()).toUTCString(),
  };
  if (request.body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(request.body));
    headers['x-content-sha256'] = createHash('sha256').update(request.body).digest('base64');
  }
  const lines = options.headers.map((name) =>
    name === '(request-target)'
      ? `(request-target): ${request.method.toLowerCase()} ${request.path}`
      : `${name}: ${headers[name]}`,
  );
  const signature = sign(
    'sha256',
    Buffer.from(lines.join('\n')),
    options.privateKey ?? oci.privateKeyPem,
  ).toString('base64');
  headers.authorization = `Signature version="1",keyId="${oci.tenancyId}/${oci.userId}/${oci.fingerprint}",algorithm="rsa-sha256",headers="${options.headers.join(' ')}",signature="${signature}"`;
  return { ...request, headers };
}

async function send(oci: MockOci, request: Signed) {
  // fetch sets Content-Length itself (the same value that was signed); a second copy would be refused.
  const { 'content-length': _length, ...headers } = request.headers;
  const response = await fetch(`${oci.url}${request.path}`, {
    method: request.method,
    headers,
    ...(request.body !== undefined ? { body: request.body } : {}),
  });
  return { status: response.status, body: (await response.json()) as { code?: string } };
}

describe('the OCI mock checks request signatures', () => {
  let oci: MockOci;
  const GET_HEADERS = ['x-date', '(request-target)', 'host'];
  const POST_HEADERS = [...GET_HEADERS, 'content-length', 'content-type', 'x-content-sha256'];

  beforeAll(async () => {
    oci = await startMockOci();
  });
  afterAll(() => oci.close());

  it('requests signed by the official oci-common signer pass (GET and POST)', async () => {
    const provider = new common.SimpleAuthenticationDetailsProvider(
      oci.tenancyId,
      oci.userId,
      oci.fingerprint,
      oci.privateKeyPem,
      null,
      common.Region.US_ASHBURN_1,
    );
    const dispatcher = createDispatcher();
    const http = new common.FetchHttpClient(new common.DefaultRequestSigner(provider), null, {
      dispatcher: (await import('@syncproxy/connector-oracle')).sdkHttpOptions(dispatcher)!.dispatcher,
    });
    const get = await http.send({
      method: 'GET',
      uri: `${oci.url}/20160918/instances?compartmentId=${oci.tenancyId}`,
      headers: new Headers(),
    });
    expect(get.status).toBe(200);
    const post = await http.send({
      method: 'POST',
      uri: `${oci.url}/20160918/volumeBackups`,
      headers: new Headers(),
      body: JSON.stringify({ volumeId: 'ocid1.volume.oc1.iad.unknown', type: 'FULL' }),
    });
    // Past the signature check: the unknown volume is what is refused.
    expect(post.status).toBe(404);
    expect(((await post.json()) as { code: string }).code).toBe('NotAuthorizedOrNotFound');
    await dispatcher.close();
  });

  it('a correctly formed signature passes for GET and POST', async () => {
    const path = `/20160918/instances?compartmentId=${oci.tenancyId}`;
    expect(
      (await send(oci, signManually(oci, { method: 'GET', path }, { headers: GET_HEADERS }))).status,
    ).toBe(200);
    const body = JSON.stringify({ volumeId: 'ocid1.volume.oc1.iad.unknown' });
    const post = signManually(
      oci,
      { method: 'POST', path: '/20160918/volumeBackups', body },
      { headers: POST_HEADERS },
    );
    expect((await send(oci, post)).status).toBe(404);
  });

  it('the same request signed with another key fails with 401 NotAuthenticated', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    const path = `/20160918/instances?compartmentId=${oci.tenancyId}`;
    const answer = await send(
      oci,
      signManually(oci, { method: 'GET', path }, { headers: GET_HEADERS, privateKey: other }),
    );
    expect(answer).toEqual({ status: 401, body: expect.objectContaining({ code: 'NotAuthenticated' }) });
    expect(oci.state.lastAuthProblem).toBe('the signature does not verify with the key of keyId');
  });

  it.each([
    ['GET', 'host'],
    ['GET', '(request-target)'],
    ['POST', 'x-content-sha256'],
    ['POST', 'content-length'],
    ['POST', 'content-type'],
  ])('a %s with %s left out of the signature fails with 401 NotAuthenticated', async (method, left) => {
    const headers = (method === 'GET' ? GET_HEADERS : POST_HEADERS).filter((h) => h !== left);
    const request =
      method === 'GET'
        ? { method, path: `/20160918/instances?compartmentId=${oci.tenancyId}` }
        : { method, path: '/20160918/volumeBackups', body: '{}' };
    const answer = await send(oci, signManually(oci, request, { headers }));
    expect(answer).toEqual({ status: 401, body: expect.objectContaining({ code: 'NotAuthenticated' }) });
    expect(oci.state.lastAuthProblem).toBe(`header ${left} is not signed`);
  });

  it('a date more than 5 minutes off fails with 401 NotAuthenticated; 4 minutes passes', async () => {
    const path = `/20160918/instances?compartmentId=${oci.tenancyId}`;
    const late = signManually(
      oci,
      { method: 'GET', path },
      { headers: GET_HEADERS, date: new Date(Date.now() - 6 * 60_000) },
    );
    expect((await send(oci, late)).status).toBe(401);
    expect(oci.state.lastAuthProblem).toBe('x-date is more than 5 minutes off');
    const near = signManually(
      oci,
      { method: 'GET', path },
      { headers: GET_HEADERS, date: new Date(Date.now() - 4 * 60_000) },
    );
    expect((await send(oci, near)).status).toBe(200);
  });

  it('a body changed after signing fails with 401 NotAuthenticated', async () => {
    const signed = signManually(
      oci,
      { method: 'POST', path: '/20160918/volumeBackups', body: '{"a":1}' },
      { headers: POST_HEADERS },
    );
    const answer = await send(oci, { ...signed, body: '{"a":2}' });
    expect(answer.status).toBe(401);
    expect(oci.state.lastAuthProblem).toBe('x-content-sha256 does not match the body');
  });

  it('lists are bare arrays paged with opc-next-page, and every answer has an opc-request-id', async () => {
    for (let i = 0; i < 3; i++) oci.addCompartment(`team-${i}`);
    const first = signManually(
      oci,
      { method: 'GET', path: `/20160918/compartments?compartmentId=${oci.tenancyId}&limit=2` },
      { headers: GET_HEADERS },
    );
    const response = await fetch(`${oci.url}${first.path}`, { headers: first.headers });
    expect(response.headers.get('opc-next-page')).toBe('2');
    expect(response.headers.get('opc-request-id')).toMatch(/^[0-9A-F]{32}$/);
    const items = (await response.json()) as unknown[];
    expect(Array.isArray(items)).toBe(true);
    expect(items).toHaveLength(2);
  });
});
