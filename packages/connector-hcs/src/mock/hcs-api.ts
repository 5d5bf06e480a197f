import { randomBytes } from 'node:crypto';
import type { MockResponse, RouteTable } from '@syncproxy/testkit/mock';
import type { MockHcsState } from './state.js';

export interface HcsApiOptions {
  url: () => string;
  tenantId: string;
  user: string;
  password: string;
  projectDomainId: string;
  projectName: string;
  projectId: string;
  region: string;
  /** Items per page at most (ECS and EVS). */
  pageSize: number;
  tokenTtlMs: number;
  now: () => number;
}

const unauthorized = (message: string): MockResponse => ({
  status: 401,
  body: { error: { code: 401, message, title: 'Unauthorized' } },
});

/**
 * IAM (`POST /v3/auth/tokens`, `GET /v3`), ECS (`/v1/{project_id}/cloudservers/detail`,
 * pages numbered from 1) and EVS (`/v2/{project_id}/cloudvolumes/detail`, item
 * offsets), all behind one gateway: the catalog points ECS and EVS back at it.
 * Tokens are checked on every call and expire.
 */
export function hcsRoutes(options: HcsApiOptions): RouteTable<MockHcsState> {
  const authorized = (headers: Record<string, string | string[] | undefined>, state: MockHcsState) => {
    const expires = state.tokens.get(String(headers['x-auth-token'] ?? ''));
    return expires !== undefined && expires > options.now();
  };
  return {
    'GET /v3': (_req, state) => ({
      body: {
        version: {
          id: 'v3.6',
          status: 'stable',
          updated: '2016-04-04T00:00:00Z',
          hcs_version: state.hcsVersion,
          links: [{ rel: 'self', href: `${options.url()}/v3/` }],
        },
      },
    }),
    'POST /v3/auth/tokens': (req, state) => {
      const body = req.json<{
        auth?: {
          identity?: {
            methods?: string[];
            password?: {
              user?: { name?: string; password?: string; domain?: { id?: string; name?: string } };
            };
          };
          scope?: { project?: { id?: string; name?: string; domain?: { id?: string } } };
        };
      }>();
      const user = body.auth?.identity?.password?.user;
      if (!body.auth?.identity?.methods?.includes('password') || !user) {
        return {
          status: 400,
          body: { error: { code: 400, message: 'The request body is invalid.', title: 'Bad Request' } },
        };
      }
      if (
        user.name !== options.user ||
        user.password !== options.password ||
        user.domain?.id !== options.tenantId
      ) {
        return unauthorized('The username or password is wrong.');
      }
      const project = body.auth.scope?.project;
      const projectOk =
        project?.id === options.projectId ||
        (project?.name === options.projectName && project?.domain?.id === options.projectDomainId);
      if (!projectOk) return unauthorized('The project does not exist or is not in the domain.');
      const token = `MII${randomBytes(24).toString('base64url')}`;
      const now = options.now();
      state.tokens.set(token, now + options.tokenTtlMs);
      state.stats.tokensIssued++;
      const endpoint = (type: string, name: string) => ({
        type,
        name,
        id: randomBytes(8).toString('hex'),
        endpoints: [
          {
            id: randomBytes(8).toString('hex'),
            interface: 'public',
            region: options.region,
            region_id: options.region,
            url: options.url(),
          },
        ],
      });
      return {
        status: 201,
        headers: { 'x-subject-token': token },
        body: {
          token: {
            methods: ['password'],
            expires_at: new Date(now + options.tokenTtlMs).toISOString(),
            issued_at: new Date(now).toISOString(),
            user: {
              id: randomBytes(8).toString('hex'),
              name: options.user,
              domain: { id: options.tenantId, name: options.user },
            },
            project: {
              id: options.projectId,
              name: options.projectName,
              domain: { id: options.projectDomainId },
            },
            catalog: [endpoint('ecs', 'ecs'), endpoint('evs', 'evs'), endpoint('identity', 'iam')],
          },
        },
      };
    },
    'GET /v1/:project/cloudservers/detail': (req, state) => {
      if (!authorized(req.headers, state)) return unauthorized('The token is invalid or expired.');
      if (req.params.project !== options.projectId)
        return { status: 403, body: { error: { code: 'Ecs.0001', message: 'wrong project' } } };
      const limit = Math.min(Number(req.query.get('limit') ?? 25), options.pageSize);
      const page = Number(req.query.get('offset') ?? 1);
      if (!Number.isInteger(page) || page < 1)
        return { status: 400, body: { error: { code: 'Ecs.0005', message: 'offset must be >= 1' } } };
      const all = [...state.servers.values()];
      const servers = all.slice((page - 1) * limit, page * limit).map((s) => ({
        id: s.id,
        name: s.name,
        status: s.status,
        tenant_id: options.projectId,
        'os-extended-volumes:volumes_attached': s.volumeIds.map((id) => {
          const v = state.volumes.get(id)!;
          return { id, delete_on_termination: 'false', bootIndex: v.boot ? '0' : '-1', device: v.device };
        }),
      }));
      return { body: { count: all.length, servers } };
    },
    'GET /v2/:project/cloudvolumes/detail': (req, state) => {
      if (!authorized(req.headers, state)) return unauthorized('The token is invalid or expired.');
      if (req.params.project !== options.projectId)
        return { status: 403, body: { error: { code: 'EVS.0001', message: 'wrong project' } } };
      const limit = Math.min(Number(req.query.get('limit') ?? 1000), options.pageSize);
      const offset = Number(req.query.get('offset') ?? 0);
      const all = [...state.volumes.values()];
      const volumes = all.slice(offset, offset + limit).map((v) => ({
        id: v.id,
        name: v.name,
        size: v.sizeGb,
        status: 'in-use',
        bootable: String(v.boot),
        volume_type: 'SAN-Dorado',
        ...(state.evsShowsWwn ? { wwn: v.wwn } : {}),
        attachments: [
          { server_id: v.serverId, device: v.device, attachment_id: randomBytes(8).toString('hex') },
        ],
        metadata: { hw: 'dorado' },
      }));
      return { body: { count: all.length, volumes } };
    },
  };
}
