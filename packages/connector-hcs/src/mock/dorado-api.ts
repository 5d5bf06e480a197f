import { randomBytes } from 'node:crypto';
import type { MockRequest, MockResponse, RouteTable } from '@syncproxy/testkit/mock';
import { DORADO_ERROR, DORADO_TYPE } from '../dorado-client.js';
import { MockHcsState, type MockNamed } from './state.js';

/** A Dorado error the next matching calls answer (HTTP 200, `error.code` set). */
export interface DoradoFault {
  method?: string;
  /** Matched against the resource path after the device id (`/snapshot/activate`). */
  path: string | RegExp;
  code: number;
  description?: string;
  skip?: number;
  times?: number;
  hits: number;
  seen: number;
}

export interface DoradoApiOptions {
  user: string;
  password: string;
  /** `scope` the user logs in with: 0 local, 1 LDAP, 2 RADIUS. */
  scope: string;
  faults: DoradoFault[];
}

const ok = (data: unknown = {}): MockResponse => ({ body: { data, error: { code: 0, description: '0' } } });
const fail = (code: number, description: string): MockResponse => ({
  body: { data: {}, error: { code, description } },
});

/** `filter=NAME::x` and `range=[a-b]` of Dorado's list calls. */
function listed<T extends object>(items: T[], query: URLSearchParams): T[] {
  let out = items;
  const filter = query.get('filter');
  if (filter) {
    const [field, value] = filter.split('::') as [string, string];
    out = out.filter((i) => String((i as Record<string, unknown>)[field]) === value);
  }
  const range = /^\[(\d+)-(\d+)\]$/.exec(query.get('range') ?? '');
  return range ? out.slice(Number(range[1]), Number(range[2])) : out.slice(0, 100);
}

function named(items: Iterable<MockNamed>): MockNamed[] {
  return [...items].map(({ ID, NAME, DESCRIPTION }) => ({ ID, NAME, DESCRIPTION }));
}

/**
 * The DeviceManager REST routes the connector calls, with the array's rules:
 * a session (device id, iBaseToken and cookie all checked, -401 otherwise),
 * HTTP 200 with `error.code` for every answer, unique names, snapshots that
 * must be activated before they can be mapped, and objects that cannot be
 * deleted while they are in use (a snapshot in a LUN group, a LUN group or
 * host group in a mapping view, a view with associations).
 */
export function doradoRoutes(options: DoradoApiOptions): RouteTable<MockHcsState> {
  const deviceId = randomBytes(8).toString('hex');
  return {
    'POST /deviceManager/rest/:any/sessions': (req, state) => {
      const body = req.json<{ username?: string; password?: string; scope?: string }>();
      if (
        body.username !== options.user ||
        body.password !== options.password ||
        body.scope !== options.scope
      ) {
        return fail(DORADO_ERROR.LOGIN_FAILED, 'The user name or password is incorrect.');
      }
      const token = randomBytes(16).toString('hex');
      const cookie = randomBytes(16).toString('hex');
      state.sessions.set(token, { deviceId, cookie });
      state.stats.sessionsOpened++;
      return {
        headers: { 'set-cookie': `session=ismsession=${cookie}; Path=/; Secure; HttpOnly` },
        body: {
          data: { deviceid: deviceId, iBaseToken: token, accountstate: 1, username: body.username, level: 2 },
          error: { code: 0, description: '0' },
        },
      };
    },
    '* /deviceManager/rest/:device/*': async (req, state) => {
      const token = String(req.headers.ibasetoken ?? '');
      const session = state.sessions.get(token);
      const cookie = String(req.headers.cookie ?? '');
      if (!session || req.params.device !== session.deviceId || !cookie.includes(session.cookie)) {
        return fail(DORADO_ERROR.UNAUTHORIZED, 'unauthorized');
      }
      const path = `/${req.params['*']}`;
      if (path === '/sessions' && req.method === 'DELETE') {
        state.sessions.delete(token);
        state.stats.sessionsClosed++;
        return ok();
      }
      for (const fault of options.faults) {
        if (fault.method && fault.method !== req.method) continue;
        if (typeof fault.path === 'string' ? !path.startsWith(fault.path) : !fault.path.test(path)) continue;
        fault.seen++;
        if (fault.seen <= (fault.skip ?? 0)) continue;
        if (fault.times !== undefined && fault.hits >= fault.times) continue;
        fault.hits++;
        return fail(fault.code, fault.description ?? `injected error ${fault.code}`);
      }
      const answer = await resource(req, path, state);
      if (/^\/(mappingview|lungroup|hostgroup|snapshot)/i.test(path) && req.method !== 'GET')
        await state.refreshDevices();
      return answer;
    },
  };
}

async function resource(req: MockRequest, path: string, state: MockHcsState): Promise<MockResponse> {
  const m = req.method;
  // An array that does not filter on a field answers the whole list: the switch shows what a client trusts.
  const q = new URLSearchParams(req.query);
  if (state.ignoreFilters) q.delete('filter');
  const body = (): Record<string, unknown> => (req.body.length ? req.json<Record<string, unknown>>() : {});
  const nameTaken = (items: Iterable<MockNamed>, name: unknown) => [...items].some((i) => i.NAME === name);
  const notExist = () => fail(DORADO_ERROR.OBJECT_NOT_EXIST, 'The object does not exist.');

  if (m === 'GET' && path === '/system/') {
    return ok({
      ID: '2102351NPT10L9000001',
      NAME: 'mock-dorado',
      PRODUCTMODE: '811',
      productModeString: state.doradoModel,
      PRODUCTVERSION: state.doradoVersion,
    });
  }
  if (m === 'GET' && path === '/lun') {
    const luns = [...state.luns.values()].map((l) => ({
      ID: l.ID,
      NAME: l.NAME,
      WWN: l.WWN,
      CAPACITY: String((state.volumes.get(l.volumeId)!.sizeGb * state.gbBytes) / 512),
    }));
    return ok(listed(luns, q));
  }

  // Snapshots.
  const snapshotView = (s: typeof state.snapshots extends Map<string, infer V> ? V : never) => ({
    ID: s.ID,
    NAME: s.NAME,
    DESCRIPTION: s.DESCRIPTION,
    PARENTID: s.PARENTID,
    PARENTTYPE: DORADO_TYPE.LUN,
    WWN: s.WWN,
    RUNNINGSTATUS: s.active ? '43' : '45',
    TIMESTAMP: s.TIMESTAMP,
    USERCAPACITY: String(
      (state.volumes.get(state.luns.get(s.PARENTID)!.volumeId)!.sizeGb * state.gbBytes) / 512,
    ),
  });
  if (path === '/snapshot' && m === 'POST') {
    const b = body();
    if (!state.luns.has(String(b.PARENTID)))
      return fail(DORADO_ERROR.LUN_NOT_EXIST, 'The LUN does not exist.');
    if (typeof b.NAME !== 'string' || b.NAME.length === 0 || b.NAME.length > 31)
      return fail(50331651, 'The entered parameter is incorrect.');
    if (nameTaken(state.snapshots.values() as Iterable<MockNamed>, b.NAME))
      return fail(DORADO_ERROR.NAME_EXISTS, 'The name already exists.');
    const id = state.nextId();
    const snapshot = {
      ID: id,
      NAME: b.NAME,
      DESCRIPTION: String(b.DESCRIPTION ?? ''),
      PARENTID: String(b.PARENTID),
      WWN: MockHcsState.wwn(),
      active: false,
      TIMESTAMP: String(Math.floor(Date.now() / 1000)),
    };
    state.snapshots.set(id, snapshot);
    state.stats.snapshotsCreated++;
    return ok(snapshotView(snapshot));
  }
  if (path === '/snapshot/activate' && m === 'POST') {
    const ids = (body().SNAPSHOTLIST as string[] | undefined) ?? [];
    if (ids.some((id) => !state.snapshots.has(id)))
      return fail(DORADO_ERROR.SNAPSHOT_NOT_EXIST, 'The snapshot does not exist.');
    state.stats.activateCalls++;
    // One point in time for the whole list: every volume frozen before any write can land.
    for (const id of ids) {
      const s = state.snapshots.get(id)!;
      if (s.active) continue;
      const volume = state.volumes.get(state.luns.get(s.PARENTID)!.volumeId)!;
      s.data = volume.disk.snapshot(`dorado-${id}`);
      s.active = true;
      state.stats.snapshotsActivated++;
    }
    return ok();
  }
  if (path === '/snapshot/stop' && m === 'PUT') {
    const s = state.snapshots.get(String(body().ID));
    if (!s) return fail(DORADO_ERROR.SNAPSHOT_NOT_EXIST, 'The snapshot does not exist.');
    s.active = false;
    return ok();
  }
  if (path === '/snapshot' && m === 'GET')
    return ok(listed([...state.snapshots.values()].map(snapshotView), q));
  if (
    path === '/snapshot/associate' &&
    m === 'GET' &&
    Number(q.get('ASSOCIATEOBJTYPE')) === DORADO_TYPE.SNAPSHOT_CONSISTENCY_GROUP
  ) {
    const group = state.consistencyGroups.get(q.get('ASSOCIATEOBJID') ?? '');
    if (!group) return notExist();
    return ok(
      listed(
        [...group.snapshots].map((id) => snapshotView(state.snapshots.get(id)!)),
        q,
      ),
    );
  }
  if (path === '/snapshot/associate' && m === 'GET') {
    const group = state.lunGroups.get(q.get('ASSOCIATEOBJID') ?? '');
    if (!group) return notExist();
    return ok(
      listed(
        [...group.snapshots].map((id) => snapshotView(state.snapshots.get(id)!)),
        q,
      ),
    );
  }
  let hit = /^\/snapshot\/([^/]+)$/.exec(path);
  if (hit) {
    const s = state.snapshots.get(hit[1]!);
    if (!s) return fail(DORADO_ERROR.SNAPSHOT_NOT_EXIST, 'The snapshot does not exist.');
    if (m === 'GET') return ok(snapshotView(s));
    if (m === 'DELETE') {
      if ([...state.lunGroups.values()].some((g) => g.snapshots.has(s.ID)))
        return fail(1077937881, 'The snapshot is in a LUN group.');
      if (s.active) return fail(1077937877, 'The snapshot is activated; stop it first.');
      state.snapshots.delete(s.ID);
      state.volumes.get(state.luns.get(s.PARENTID)!.volumeId)?.disk.deleteSnapshot(`dorado-${s.ID}`);
      return ok();
    }
  }

  // Protection groups and snapshot consistency groups (paths are case-insensitive on the array).
  const lower = path.toLowerCase();
  if (lower.startsWith('/snapshot_consistency_group') && !state.consistencyGroupsSupported) {
    return fail(1077949001, 'The function is not supported by this model.');
  }
  if (lower === '/protectgroup' && m === 'GET') return ok(listed(named(state.protectGroups.values()), q));
  if (lower === '/protectgroup' && m === 'POST') {
    const b = body();
    if (nameTaken(state.protectGroups.values(), b.NAME))
      return fail(DORADO_ERROR.NAME_EXISTS, 'The name already exists.');
    const pg = {
      ID: state.nextId(),
      NAME: String(b.NAME),
      DESCRIPTION: String(b.DESCRIPTION ?? ''),
      luns: new Set<string>(),
    };
    state.protectGroups.set(pg.ID, pg);
    return ok({ ID: pg.ID, NAME: pg.NAME, DESCRIPTION: pg.DESCRIPTION });
  }
  if (lower === '/protectgroup/associate' && m === 'POST') {
    const b = body();
    const pg = state.protectGroups.get(String(b.ID));
    if (!pg) return notExist();
    if (!state.luns.has(String(b.ASSOCIATEOBJID)))
      return fail(DORADO_ERROR.LUN_NOT_EXIST, 'The LUN does not exist.');
    pg.luns.add(String(b.ASSOCIATEOBJID));
    return ok();
  }
  if (lower === '/protectgroup/associate' && m === 'DELETE') {
    const pg = state.protectGroups.get(q.get('ID') ?? '');
    if (!pg?.luns.delete(q.get('ASSOCIATEOBJID') ?? '')) return notExist();
    return ok();
  }
  hit = /^\/protectgroup\/([^/]+)$/.exec(lower);
  if (hit && m === 'DELETE') {
    const pg = state.protectGroups.get(hit[1]!);
    if (!pg) return notExist();
    if (pg.luns.size > 0) return fail(1077937900, 'The protection group still holds LUNs.');
    if ([...state.consistencyGroups.values()].some((g) => g.PARENTID === pg.ID))
      return fail(1077937901, 'The protection group has a snapshot consistency group.');
    state.protectGroups.delete(pg.ID);
    return ok();
  }
  if (lower === '/snapshot_consistency_group' && m === 'GET') {
    return ok(
      listed(
        [...state.consistencyGroups.values()].map(({ ID, NAME, DESCRIPTION, PARENTID, active }) => ({
          ID,
          NAME,
          DESCRIPTION,
          PARENTID,
          RUNNINGSTATUS: active ? '43' : '45',
        })),
        q,
      ),
    );
  }
  if (lower === '/snapshot_consistency_group' && m === 'POST') {
    const b = body();
    const pg = state.protectGroups.get(String(b.PARENTID));
    if (!pg) return notExist();
    if (pg.luns.size === 0) return fail(50331651, 'The protection group has no LUN.');
    if (nameTaken(state.consistencyGroups.values(), b.NAME))
      return fail(DORADO_ERROR.NAME_EXISTS, 'The name already exists.');
    const cg = {
      ID: state.nextId(),
      NAME: String(b.NAME),
      DESCRIPTION: String(b.DESCRIPTION ?? ''),
      PARENTID: pg.ID,
      snapshots: new Set<string>(),
      active: false,
    };
    for (const lunId of pg.luns) {
      const id = state.nextId();
      state.snapshots.set(id, {
        ID: id,
        NAME: `${cg.NAME.slice(0, 20)}_${id}`.slice(0, 31),
        DESCRIPTION: cg.DESCRIPTION,
        PARENTID: lunId,
        WWN: MockHcsState.wwn(),
        active: false,
        TIMESTAMP: String(Math.floor(Date.now() / 1000)),
      });
      state.stats.snapshotsCreated++;
      cg.snapshots.add(id);
    }
    state.consistencyGroups.set(cg.ID, cg);
    state.stats.consistencyGroupsCreated++;
    return ok({ ID: cg.ID, NAME: cg.NAME, DESCRIPTION: cg.DESCRIPTION, PARENTID: cg.PARENTID });
  }
  if (
    (lower === '/snapshot_consistency_group/activate' && m === 'POST') ||
    (lower === '/snapshot_consistency_group/stop' && m === 'PUT')
  ) {
    const cg = state.consistencyGroups.get(String(body().ID));
    if (!cg) return notExist();
    const activate = lower.endsWith('activate');
    if (activate) state.stats.consistencyGroupActivations++;
    for (const id of cg.snapshots) {
      const s = state.snapshots.get(id)!;
      if (activate && !s.active) {
        s.data = state.volumes.get(state.luns.get(s.PARENTID)!.volumeId)!.disk.snapshot(`dorado-${id}`);
        state.stats.snapshotsActivated++;
      }
      s.active = activate;
    }
    cg.active = activate;
    return ok();
  }
  hit = /^\/snapshot_consistency_group\/([^/]+)$/.exec(lower);
  if (hit && m === 'DELETE') {
    const cg = state.consistencyGroups.get(hit[1]!);
    if (!cg) return notExist();
    if (cg.active) return fail(1077937877, 'The snapshot consistency group is activated; stop it first.');
    if ([...state.lunGroups.values()].some((g) => [...cg.snapshots].some((id) => g.snapshots.has(id)))) {
      return fail(1077937881, 'A snapshot of the group is in a LUN group.');
    }
    for (const id of cg.snapshots) {
      const s = state.snapshots.get(id)!;
      state.snapshots.delete(id);
      state.volumes.get(state.luns.get(s.PARENTID)!.volumeId)?.disk.deleteSnapshot(`dorado-${id}`);
    }
    state.consistencyGroups.delete(cg.ID);
    return ok();
  }

  // Hosts, initiators, host groups.
  if (path === '/host' && m === 'GET') return ok(listed(named(state.hosts.values()), q));
  if (path === '/host' && m === 'POST') {
    const b = body();
    if (nameTaken(state.hosts.values(), b.NAME))
      return fail(DORADO_ERROR.NAME_EXISTS, 'The name already exists.');
    const host = { ID: state.nextId(), NAME: String(b.NAME), DESCRIPTION: String(b.DESCRIPTION ?? '') };
    state.hosts.set(host.ID, host);
    return ok(host);
  }
  if (path === '/host/associate' && m === 'GET') {
    const group = state.hostGroups.get(q.get('ASSOCIATEOBJID') ?? '');
    if (!group) return notExist();
    return ok(
      listed(
        [...group.hosts].map((id) => state.hosts.get(id)!),
        q,
      ),
    );
  }
  if (path === '/iscsi_initiator' && m === 'GET') {
    return ok(
      listed(
        [...state.initiators].map(([ID, PARENTID]) => ({
          ID,
          ...(PARENTID ? { PARENTID, PARENTTYPE: 21, ISFREE: 'false' } : { ISFREE: 'true' }),
        })),
        q,
      ),
    );
  }
  if (path === '/iscsi_initiator' && m === 'POST') {
    const id = String(body().ID);
    if (state.initiators.has(id)) return fail(DORADO_ERROR.NAME_EXISTS, 'The initiator already exists.');
    state.initiators.set(id, '');
    return ok({ ID: id });
  }
  hit = /^\/iscsi_initiator\/(.+)$/.exec(path);
  if (hit && m === 'PUT') {
    const id = decodeURIComponent(hit[1]!);
    const b = body();
    if (!state.initiators.has(id)) return notExist();
    if (!state.hosts.has(String(b.PARENTID)))
      return fail(DORADO_ERROR.HOST_NOT_EXIST, 'The host does not exist.');
    state.initiators.set(id, String(b.PARENTID));
    return ok();
  }
  if (path === '/hostgroup' && m === 'GET') return ok(listed(named(state.hostGroups.values()), q));
  if (path === '/hostgroup' && m === 'POST') {
    const b = body();
    if (nameTaken(state.hostGroups.values(), b.NAME))
      return fail(DORADO_ERROR.NAME_EXISTS, 'The name already exists.');
    const group = {
      ID: state.nextId(),
      NAME: String(b.NAME),
      DESCRIPTION: String(b.DESCRIPTION ?? ''),
      hosts: new Set<string>(),
    };
    state.hostGroups.set(group.ID, group);
    return ok({ ID: group.ID, NAME: group.NAME, DESCRIPTION: group.DESCRIPTION });
  }
  if (path === '/hostgroup/associate' && m === 'POST') {
    const b = body();
    const group = state.hostGroups.get(String(b.ID));
    if (!group || !state.hosts.has(String(b.ASSOCIATEOBJID))) return notExist();
    group.hosts.add(String(b.ASSOCIATEOBJID));
    return ok();
  }
  if (path === '/hostgroup/associate' && m === 'GET') {
    const view = state.mappingViews.get(q.get('ASSOCIATEOBJID') ?? '');
    if (!view) return notExist();
    return ok(named([...view.hostGroups].map((id) => state.hostGroups.get(id)!)));
  }

  // LUN groups.
  if (path === '/lungroup' && m === 'GET') return ok(listed(named(state.lunGroups.values()), q));
  if (path === '/lungroup' && m === 'POST') {
    const b = body();
    if (nameTaken(state.lunGroups.values(), b.NAME))
      return fail(DORADO_ERROR.NAME_EXISTS, 'The name already exists.');
    const group = {
      ID: state.nextId(),
      NAME: String(b.NAME),
      DESCRIPTION: String(b.DESCRIPTION ?? ''),
      snapshots: new Set<string>(),
    };
    state.lunGroups.set(group.ID, group);
    return ok({ ID: group.ID, NAME: group.NAME, DESCRIPTION: group.DESCRIPTION });
  }
  if (path === '/lungroup/associate' && m === 'POST') {
    const b = body();
    const group = state.lunGroups.get(String(b.ID));
    if (!group) return fail(DORADO_ERROR.LUNGROUP_NOT_EXIST, 'The LUN group does not exist.');
    if (Number(b.ASSOCIATEOBJTYPE) !== DORADO_TYPE.SNAPSHOT)
      return fail(50331651, 'The entered parameter is incorrect.');
    const s = state.snapshots.get(String(b.ASSOCIATEOBJID));
    if (!s) return fail(DORADO_ERROR.SNAPSHOT_NOT_EXIST, 'The snapshot does not exist.');
    if (!s.active) return fail(1077937891, 'The snapshot is not activated.');
    if (group.snapshots.has(s.ID))
      return fail(DORADO_ERROR.OBJECT_ALREADY_ASSOCIATED, 'The object is already in the LUN group.');
    group.snapshots.add(s.ID);
    return ok();
  }
  if (path === '/lungroup/associate' && m === 'DELETE') {
    const group = state.lunGroups.get(q.get('ID') ?? '');
    if (!group) return fail(DORADO_ERROR.LUNGROUP_NOT_EXIST, 'The LUN group does not exist.');
    if (!group.snapshots.delete(q.get('ASSOCIATEOBJID') ?? '')) return notExist();
    return ok();
  }
  if (path === '/lungroup/associate' && m === 'GET') {
    const view = state.mappingViews.get(q.get('ASSOCIATEOBJID') ?? '');
    if (!view) return notExist();
    return ok(named([...view.lunGroups].map((id) => state.lunGroups.get(id)!)));
  }
  hit = /^\/lungroup\/([^/]+)$/.exec(path);
  if (hit && m === 'DELETE') {
    const group = state.lunGroups.get(hit[1]!);
    if (!group) return fail(DORADO_ERROR.LUNGROUP_NOT_EXIST, 'The LUN group does not exist.');
    if (group.snapshots.size > 0) return fail(1077948999, 'The LUN group is not empty.');
    if ([...state.mappingViews.values()].some((v) => v.lunGroups.has(group.ID)))
      return fail(1077951818, 'The LUN group is in a mapping view.');
    state.lunGroups.delete(group.ID);
    return ok();
  }

  // Mapping views.
  if (path === '/mappingview' && m === 'GET') return ok(listed(named(state.mappingViews.values()), q));
  if (path === '/mappingview' && m === 'POST') {
    const b = body();
    if (nameTaken(state.mappingViews.values(), b.NAME))
      return fail(DORADO_ERROR.NAME_EXISTS, 'The name already exists.');
    const view = {
      ID: state.nextId(),
      NAME: String(b.NAME),
      DESCRIPTION: String(b.DESCRIPTION ?? ''),
      hostGroups: new Set<string>(),
      lunGroups: new Set<string>(),
    };
    state.mappingViews.set(view.ID, view);
    return ok({ ID: view.ID, NAME: view.NAME, DESCRIPTION: view.DESCRIPTION });
  }
  if ((path === '/mappingview/create_associate' || path === '/mappingview/remove_associate') && m === 'PUT') {
    const b = body();
    const view = state.mappingViews.get(String(b.ID));
    if (!view) return fail(DORADO_ERROR.MAPPING_NOT_EXIST, 'The mapping view does not exist.');
    const type = Number(b.ASSOCIATEOBJTYPE);
    const set =
      type === DORADO_TYPE.HOSTGROUP
        ? view.hostGroups
        : type === DORADO_TYPE.LUNGROUP
          ? view.lunGroups
          : undefined;
    const known = type === DORADO_TYPE.HOSTGROUP ? state.hostGroups : state.lunGroups;
    const id = String(b.ASSOCIATEOBJID);
    if (!set || !known.has(id)) return fail(50331651, 'The entered parameter is incorrect.');
    if (path.endsWith('create_associate')) {
      if (set.size > 0)
        return fail(DORADO_ERROR.OBJECT_ALREADY_ASSOCIATED, 'The mapping view already has one.');
      set.add(id);
    } else if (!set.delete(id)) return notExist();
    return ok();
  }
  hit = /^\/mappingview\/([^/]+)$/.exec(path);
  if (hit && m === 'DELETE') {
    const view = state.mappingViews.get(hit[1]!);
    if (!view) return fail(DORADO_ERROR.MAPPING_NOT_EXIST, 'The mapping view does not exist.');
    if (view.hostGroups.size + view.lunGroups.size > 0)
      return fail(1077951832, 'The mapping view has associations.');
    state.mappingViews.delete(view.ID);
    return ok();
  }
  return fail(50331651, `mock Dorado: no ${m} ${path}`);
}
