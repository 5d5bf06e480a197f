import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCliRegistry } from '@syncproxy/cli';
import { awsConfigSchema } from '@syncproxy/connector-aws';
import { type MockAws, startMockAws } from '@syncproxy/connector-aws/mock';
import { toJSONSchema } from '@syncproxy/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killLeftoverCli, runSyncproxy } from './cli-process.js';

const GiB = 1024 ** 3;

let mock: MockAws;
let dir: string;
let configPath: string;

beforeAll(async () => {
  // Snapshots complete at once: the CLI's default snapshot wait (2 s polls) is then never used.
  mock = await startMockAws({ region: 'us-east-1', snapshotPollsUntilCompleted: 0 });
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-cli-test-'));
  configPath = join(dir, 'aws.json');
  await writeFile(configPath, JSON.stringify(mock.config()));
});

afterEach(() => killLeftoverCli());

afterAll(async () => {
  await mock?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Columns of a table line (cells are two or more spaces apart). */
function cells(line: string): string[] {
  return line.trim().split(/\s{2,}/);
}

describe('syncproxy connectors and schema', () => {
  it('connectors lists the shipped connectors with versions and capabilities', async () => {
    const run = await runSyncproxy(['connectors']);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(cells(lines[0]!)).toEqual([
      'ID',
      'NAME',
      'VERSION',
      'SPEC',
      'CHANGES',
      'MULTI-DISK SNAPSHOT',
      'MOUNTS DISKS',
      'QUIESCE',
    ]);
    expect(lines.slice(1).map(cells)).toEqual([
      ['aws', 'Amazon Web Services (EC2 + EBS direct APIs)', '0.1.0', 'v1', 'native', 'yes', 'no', 'no'],
      [
        'fusioncompute',
        'Huawei FusionCompute (VRM REST, CBT backup)',
        '0.1.0',
        'v1',
        'native',
        'yes',
        'no',
        'no',
      ],
      [
        'hcs',
        'Huawei Cloud Stack 8.0.2 (OceanStor Dorado snapshots)',
        '0.1.0',
        'v1',
        'hash',
        'yes',
        'yes',
        'no',
      ],
      [
        'huaweicloud',
        'Huawei Cloud (ECS + CBR, snapshot data export to OBS or attached volumes)',
        '0.1.0',
        'v1',
        'hash',
        'yes',
        'yes',
        'no',
      ],
      ['localdisk', 'Local disk (agent)', '0.1.0', 'v1', 'hash', 'no', 'no', 'no'],
      ['openstack-ceph', 'OpenStack + Ceph', '0.1.0', 'v1', 'native', 'no', 'no', 'no'],
      [
        'oracle',
        'Oracle Cloud Infrastructure (volume backups, backup-delta volumes)',
        '0.1.0',
        'v1',
        'native',
        'no',
        'yes',
        'no',
      ],
      ['vmware', 'VMware vSphere (vCenter / ESXi, CBT)', '0.1.0', 'v1', 'native', 'yes', 'no', 'yes'],
    ]);
    const json = await runSyncproxy(['connectors', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(JSON.stringify(createCliRegistry().list())));
  });

  it('schema prints the JSON Schema of the config form; an unknown platform exits 2', async () => {
    const run = await runSyncproxy(['schema', 'aws']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(toJSONSchema(awsConfigSchema));
    const unknown = await runSyncproxy(['schema', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toBe(
      'error (config): unknown connector "nope" (known: aws, fusioncompute, hcs, huaweicloud, localdisk, openstack-ceph, oracle, vmware)\n',
    );
  });
});

describe('syncproxy check and hosts', () => {
  let instanceId: string;
  beforeAll(() => {
    instanceId = mock.addInstance({
      name: 'inventory-01',
      volumes: [{ sizeBytes: GiB }, { sizeBytes: 2 * GiB }],
    }).instance.id;
  });

  it('a bad config prints every zod field error, never the secret, and exits 2', async () => {
    const path = join(dir, 'bad.json');
    const secret = 'not-a-real-secret/but+long';
    const bad = { accessKeyId: 'short', secretAccessKey: secret, region: 'mars', maxConnections: 0 };
    await writeFile(path, JSON.stringify(bad));
    const issues = awsConfigSchema.safeParse(bad).error!.issues;
    expect(issues.length).toBe(3);
    for (const command of ['check', 'hosts']) {
      const run = await runSyncproxy([command, '--platform', 'aws', '--config', path]);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(
        `error (config): invalid aws config in ${path}\n${issues
          .map((i) => `  ${i.path.join('.')}: ${i.message}\n`)
          .join('')}`,
      );
      expect(run.stderr).not.toContain(secret);
    }
  });

  it('check shows the preflight table, the credential check and the host count', async () => {
    const run = await runSyncproxy(['check', '--platform', 'aws', '--config', configPath]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    const port = new URL(mock.url).port;
    const header = lines.findIndex((l) => l.startsWith('ENDPOINT'));
    expect(cells(lines[header]!)).toEqual(['ENDPOINT', 'PORT', 'PURPOSE', 'REACHABLE', 'LATENCY']);
    expect(lines.slice(header + 1, header + 3).map((l) => cells(l).slice(0, 4))).toEqual([
      ['127.0.0.1', port, 'EC2 API (inventory, snapshots)', 'yes'],
      ['127.0.0.1', port, 'EBS direct APIs (changed blocks, block data)', 'yes'],
    ]);
    const hostCount = [...mock.state.instances.values()].length;
    expect(lines).toContain(`hosts: ${hostCount}`);
    expect(lines.some((l) => l.startsWith('credentials: ok, platform status normal'))).toBe(true);
    expect(lines).toContain('check passed');

    const json = JSON.parse((await runSyncproxy(['check', '-p', 'aws', '-c', configPath, '--json'])).stdout);
    expect(json.ok).toBe(true);
    expect(json.network.map((r: { reachable: boolean }) => r.reachable)).toEqual([true, true]);
    expect(json.credentials.state).toBe('ok');
    expect(json.hostCount).toBe(hostCount);
  });

  it('an unreachable endpoint shows in the preflight table and the check exits 1', async () => {
    const closed = await closedPort();
    const path = join(dir, 'unreachable.json');
    const config = mock.config();
    await writeFile(
      path,
      JSON.stringify({ ...config, endpoints: { ...config.endpoints, ebs: `http://127.0.0.1:${closed}` } }),
    );
    const run = await runSyncproxy(['check', '--platform', 'aws', '--config', path]);
    expect(run.code).toBe(1);
    const lines = run.stdout.split('\n');
    const row = lines.find((l) => l.startsWith('127.0.0.1') && cells(l)[1] === String(closed));
    expect(cells(row!).slice(0, 4)).toEqual([
      '127.0.0.1',
      String(closed),
      'EBS direct APIs (changed blocks, block data)',
      'NO (ECONNREFUSED)',
    ]);
    // The credential check runs all the same (EC2 is reachable) and is reported.
    expect(lines.some((l) => l.startsWith('credentials: ok, platform status normal'))).toBe(true);
    expect(lines).toContain('check FAILED');
  });

  it('wrong credentials fail the credential check (exit 1) without showing the secret', async () => {
    const path = join(dir, 'wrong-secret.json');
    const secret = 'wrong/Secret+Access/Key-0123456789';
    await writeFile(path, JSON.stringify({ ...mock.config(), secretAccessKey: secret }));
    const run = await runSyncproxy(['check', '--platform', 'aws', '--config', path]);
    expect(run.code).toBe(1);
    expect(run.stdout.split('\n')).toContain(
      'credentials: FAILED (auth): DescribeRegions failed: HTTP 401 AuthFailure: AWS was not able to validate the provided access credentials (check the access key id and the secret access key)',
    );
    expect(run.stdout + run.stderr).not.toContain(secret);
    const json = await runSyncproxy(['check', '-p', 'aws', '-c', path, '--json', '--verbose']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).credentials.error.code).toBe('auth');
    expect(json.stdout + json.stderr).not.toContain(secret);
  });

  it('hosts lists instances and disks, as a table or JSON', async () => {
    const run = await runSyncproxy(['hosts', '--platform', 'aws', '--config', configPath]);
    expect(run.code).toBe(0);
    const row = run.stdout.split('\n').find((l) => l.startsWith(instanceId));
    const volumes = mock.state.instances.get(instanceId)!.volumeIds;
    expect(cells(row!)).toEqual([instanceId, 'inventory-01', 'on', '2', '3.00 GiB', volumes.join(', ')]);
    const json = await runSyncproxy(['hosts', '-p', 'aws', '-c', configPath, '--json']);
    expect(json.code).toBe(0);
    const host = JSON.parse(json.stdout).find((h: { id: string }) => h.id === instanceId);
    expect(host.disks.map((d: { id: string; sizeBytes: number }) => [d.id, d.sizeBytes])).toEqual([
      [volumes[0], GiB],
      [volumes[1], 2 * GiB],
    ]);
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
