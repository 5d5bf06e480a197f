import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAwsConnector } from '@syncproxy/connector-aws';
import { type MockAws, startMockAws } from '@syncproxy/connector-aws/mock';
import { toJSONSchema } from '@syncproxy/core';
import { seededBytes, VirtualDisk } from '@syncproxy/testkit/mock';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../src/index.js';
import { parseByteRate } from '../src/run-cli.js';

let mock: MockAws;
let dir: string;

beforeAll(async () => {
  mock = await startMockAws({ region: 'us-east-1', snapshotPollsUntilCompleted: 0 });
  mock.addInstance({ name: 'web', volumes: [{ sizeBytes: 1024 ** 3 }] });
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-cli-commands-'));
});

afterAll(async () => {
  await mock?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with its own streams, stdin text and environment. */
async function cli(
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    cwd: dir,
    stdin: (async function* () {
      if (options.stdin !== undefined) yield options.stdin;
    })(),
    env: options.env ?? {},
  });
  return { code, stdout, stderr };
}

async function configFile(name: string, value: unknown): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, JSON.stringify(value));
  return path;
}

function withoutSecret(): Record<string, unknown> {
  const { secretAccessKey: _secret, ...rest } = mock.config();
  return rest;
}

describe('every connector package is in the CLI', () => {
  const packagesDir = new URL('../../', import.meta.url);
  const connectorPackages = readdirSync(packagesDir).filter((d) => d.startsWith('connector-'));

  it('finds the connector packages of the repository', () => {
    expect(connectorPackages.length).toBeGreaterThanOrEqual(4);
  });

  for (const name of connectorPackages) {
    it(`syncproxy schema <id> works for each connector of @syncproxy/${name}`, async () => {
      const module = (await import(`@syncproxy/${name}`)) as Record<string, unknown>;
      const connectors = Object.values(module).filter(
        (v): v is { id: string; configSchema: Parameters<typeof toJSONSchema>[0] } =>
          typeof v === 'object' && v !== null && 'specVersion' in v && 'configSchema' in v,
      );
      expect(connectors.length, `@syncproxy/${name} exports no connector`).toBeGreaterThan(0);
      for (const connector of connectors) {
        const run = await cli(['schema', connector.id]);
        expect(run.stderr).toBe('');
        expect(run.code).toBe(0);
        expect(JSON.parse(run.stdout)).toEqual(
          JSON.parse(JSON.stringify(toJSONSchema(connector.configSchema))),
        );
      }
    });
  }
});

describe('config input', () => {
  it('-c - reads the config from stdin', async () => {
    const run = await cli(['hosts', '-p', 'aws', '-c', '-', '--json'], {
      stdin: JSON.stringify(mock.config()),
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout) as Array<{ name: string }>).map((h) => h.name)).toEqual(['web']);
  });

  it('a secret comes from SYNCPROXY_<FIELD> when the file has none', async () => {
    const path = await configFile('no-secret.json', withoutSecret());
    const without = await cli(['hosts', '-p', 'aws', '-c', path]);
    expect(without.code).toBe(2);
    expect(without.stderr).toBe(
      `error (config): invalid aws config in ${path}\n  secretAccessKey: Invalid input: expected string, received undefined\n`,
    );
    const run = await cli(['hosts', '-p', 'aws', '-c', path, '--json'], {
      env: { SYNCPROXY_SECRET_ACCESS_KEY: mock.credentials.secretAccessKey },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  it('SYNCPROXY_<FIELD>_FILE names a file holding the secret (one trailing newline dropped)', async () => {
    const path = await configFile('no-secret-2.json', withoutSecret());
    const secretFile = join(dir, 'secret.txt');
    await writeFile(secretFile, `${mock.credentials.secretAccessKey}\n`);
    const run = await cli(['hosts', '-p', 'aws', '-c', path, '--json'], {
      env: { SYNCPROXY_SECRET_ACCESS_KEY_FILE: secretFile },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const missing = await cli(['hosts', '-p', 'aws', '-c', path], {
      env: { SYNCPROXY_SECRET_ACCESS_KEY_FILE: join(dir, 'nope.txt') },
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      `error (config): cannot read SYNCPROXY_SECRET_ACCESS_KEY_FILE ${join(dir, 'nope.txt')} (ENOENT)\n`,
    );
  });

  it('precedence: SYNCPROXY_<FIELD>, then SYNCPROXY_<FIELD>_FILE, then the config file', async () => {
    const path = await configFile('wrong-secret.json', { ...mock.config(), secretAccessKey: 'wrong' });
    const wrongFile = join(dir, 'wrong.txt');
    await writeFile(wrongFile, 'also-wrong');
    const fromFileVariable = await cli(['hosts', '-p', 'aws', '-c', path], {
      env: { SYNCPROXY_SECRET_ACCESS_KEY_FILE: wrongFile },
    });
    expect(fromFileVariable.code).toBe(1);
    expect(fromFileVariable.stderr).toMatch(/^error \(auth\): /);
    expect(fromFileVariable.stderr).not.toContain('also-wrong');
    const run = await cli(['hosts', '-p', 'aws', '-c', path, '--json'], {
      env: {
        SYNCPROXY_SECRET_ACCESS_KEY: mock.credentials.secretAccessKey,
        SYNCPROXY_SECRET_ACCESS_KEY_FILE: wrongFile,
      },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });
});

describe('check', () => {
  it('runs the credential check too when an endpoint is unreachable, and reports each', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const path = await configFile('unreachable.json', {
      ...mock.config(),
      endpoints: { ec2: `http://127.0.0.1:${port}`, ebs: mock.url },
    });
    const run = await cli(['check', '-p', 'aws', '-c', path, '--json', '--timeout-ms', '2000']);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      network: Array<{ port: number; reachable: boolean }>;
      credentials: { state: string; error?: { code: string } };
    };
    expect(report.ok).toBe(false);
    expect(report.network.map((r) => [r.port, r.reachable])).toEqual([
      [port, false],
      [Number(new URL(mock.url).port), true],
    ]);
    expect(report.credentials.state).toBe('failed');
    expect(report.credentials.error?.code).toBe('network');
  });
});

describe('prechecks', () => {
  it("prints the connector's numbered checks of a host", async () => {
    const path = await configFile('aws.json', mock.config());
    const hosts = JSON.parse((await cli(['hosts', '-p', 'aws', '-c', path, '--json'])).stdout) as Array<{
      id: string;
    }>;
    const hostId = hosts[0]!.id;
    const run = await cli(['prechecks', '-p', 'aws', '-c', path, '--host', hostId, '--json']);
    const session = await createAwsConnector().connect(mock.config());
    const host = (await session.listHosts())[0]!;
    const expected = await session.prechecks(host);
    await session.close();
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({
      ok: expected.every((r) => r.status !== 'fail'),
      host: hostId,
      results: expected,
    });
    expect(run.code).toBe(expected.every((r) => r.status !== 'fail') ? 0 : 1);
    const unknown = await cli(['prechecks', '-p', 'aws', '-c', path, '--host', 'i-nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      'error (config): --host i-nope: no such host on the platform (see syncproxy hosts)\n',
    );
  });
});

describe('completion', () => {
  it('prints a bash script naming every command and platform; an unknown shell exits 2', async () => {
    const run = await cli(['completion', 'bash']);
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n')[0]).toBe(
      '# syncproxy completion for bash: source <(syncproxy completion bash)',
    );
    expect(run.stdout).toContain(
      'COMPREPLY=( $(compgen -W "connectors schema check hosts prechecks sync plan sweep demo completion" -- "$cur") )',
    );
    expect(run.stdout).toContain(
      'COMPREPLY=( $(compgen -W "aws fusioncompute hcs huaweicloud localdisk openstack-ceph oracle vmware" -- "$cur") ); return ;;',
    );
    expect(run.stdout.trimEnd().endsWith('complete -F _syncproxy syncproxy')).toBe(true);
    const zsh = await cli(['completion', 'zsh']);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout.split('\n')[0]).toBe('autoload -U +X bashcompinit && bashcompinit');
    const fish = await cli(['completion', 'fish']);
    expect(fish.code).toBe(2);
    expect(fish.stderr).toBe('error (config): unknown shell "fish" (known: bash, zsh)\n');
  });
});

describe('flags', () => {
  it('--bandwidth-limit takes decimal and binary units', () => {
    expect(parseByteRate('100M')).toBe(100_000_000);
    expect(parseByteRate('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseByteRate('800KiB/s')).toBe(800 * 1024);
    expect(parseByteRate('4096')).toBe(4096);
    expect(() => parseByteRate('fast')).toThrow('a rate such as 100M, 1.5GiB or 800KiB/s (bytes per second)');
  });

  it('a bad --bandwidth-limit, --concurrency or --log-level is bad usage (exit 2), before anything runs', async () => {
    const base = ['sync', '-p', 'aws', '-c', 'x.json', '--host', 'h', '-t', dir];
    const rate = await cli([...base, '--bandwidth-limit', 'fast']);
    expect(rate.code).toBe(2);
    expect(rate.stderr.split('\n')[0]).toBe(
      "error: option '--bandwidth-limit <rate>' argument 'fast' is invalid. a rate such as 100M, 1.5GiB or 800KiB/s (bytes per second)",
    );
    const concurrency = await cli([...base, '--concurrency', '0']);
    expect(concurrency.code).toBe(2);
    expect(concurrency.stderr.split('\n')[0]).toBe(
      "error: option '--concurrency <n>' argument '0' is invalid. must be a positive integer",
    );
    const level = await cli(['hosts', '-p', 'aws', '-c', 'x.json', '--log-level', 'loud']);
    expect(level.code).toBe(2);
    expect(level.stderr.split('\n')[0]).toBe(
      "error: option '--log-level <level>' argument 'loud' is invalid. Allowed choices are debug, info, warn, error.",
    );
  });

  it('--log-level info writes the connector logs at info and up as JSON lines', async () => {
    const path = await configFile('aws-log.json', mock.config());
    const run = await cli(['hosts', '-p', 'aws', '-c', path, '--json', '--log-level', 'info']);
    expect(run.code).toBe(0);
    for (const line of run.stderr.split('\n').filter(Boolean)) {
      expect(['info', 'warn', 'error']).toContain((JSON.parse(line) as { level: string }).level);
    }
    expect(run.stderr).not.toContain(mock.credentials.secretAccessKey);
  });
});

describe('plan', () => {
  it('lists per disk the data bytes to read and an ETA at the given rate, reads no data, leaves no snapshot', async () => {
    const disk = new VirtualDisk({ sizeBytes: 1024 ** 3, blockSizeBytes: 64 * 1024 });
    disk.write(0, seededBytes(1, 1024 * 1024)); // two 512 KiB EBS blocks
    disk.write(100 * 1024 * 1024, seededBytes(2, 10)); // one more
    const { instance, volumes } = mock.addInstance({ name: 'db', volumes: [{ disk }] });
    const path = await configFile('aws-plan.json', mock.config());
    const snapshotsBefore = mock.state.snapshots.size;
    const reads = () => mock.calls.filter((c) => c.path.includes('/blocks/')).length;
    const readsBefore = reads();
    const args = [
      'plan',
      '-p',
      'aws',
      '-c',
      path,
      '--host',
      instance.id,
      '-t',
      join(dir, 'plan'),
      '--rate',
      '1M',
    ];
    const json = await cli([...args, '--json']);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      host: instance.id,
      mode: 'full',
      disks: [
        {
          diskId: volumes[0]!.id,
          sizeBytes: 1024 ** 3,
          bytesToRead: 1.5 * 1024 * 1024,
          bytesPerSecond: 1_000_000,
          etaMs: ((1.5 * 1024 * 1024) / 1_000_000) * 1000,
        },
      ],
    });
    const text = await cli(args);
    expect(text.code).toBe(0);
    const row = text.stdout.split('\n').find((l) => l.startsWith(volumes[0]!.id))!;
    expect(row.trim().split(/\s{2,}/)).toEqual([
      volumes[0]!.id,
      '1.00 GiB',
      '1.5 MiB',
      '976.6 KiB/s',
      '1.6 s',
    ]);
    expect(reads()).toBe(readsBefore);
    expect(mock.state.snapshots.size).toBe(snapshotsBefore);
    const incremental = await cli([...args, '--incremental']);
    expect(incremental.code).toBe(2);
    expect(incremental.stderr).toBe(
      `error (config): --incremental: ${join(dir, 'plan')} has no synced image of ${volumes[0]!.id} to start from (run a full sync first)\n`,
    );
  });

  it('says a hash-diff disk (localdisk) costs a full read, and reads none of it: no snapshot, no source read', async () => {
    const source = join(dir, 'plan-source.img');
    await writeFile(source, seededBytes(3, 2 * 1024 * 1024));
    const path = await configFile('localdisk-plan.json', {
      hostName: 'box',
      disks: [{ path: source, id: 'root' }],
      stateDir: join(dir, 'plan-localdisk-state'),
      chunkSizeBytes: 64 * 1024,
    });
    // Every read of a file handle in this process (the connector reads the source through one).
    const probe = await open(source, 'r');
    const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => unknown };
    await probe.close();
    const reads = vi.spyOn(proto, 'read');
    try {
      const args = [
        'plan',
        '-p',
        'localdisk',
        '-c',
        path,
        '--host',
        'box',
        '-t',
        join(dir, 'plan-ld'),
        '--rate',
        '1M',
      ];
      const json = await cli([...args, '--json']);
      expect(json.stderr).toBe('');
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toEqual({
        host: 'box',
        mode: 'full',
        disks: [
          {
            diskId: 'root',
            sizeBytes: 2 * 1024 * 1024,
            bytesPerSecond: 1_000_000,
            etaMs: ((2 * 1024 * 1024) / 1_000_000) * 1000,
            note: 'extents cost a full read of the disk here (hash diff): not listed; the sync reads it all',
          },
        ],
      });
      const text = await cli(args);
      expect(text.code).toBe(0);
      const lines = text.stdout.split('\n');
      expect(
        lines
          .find((l) => l.startsWith('root'))!
          .trim()
          .split(/\s{2,}/),
      ).toEqual(['root', '2.0 MiB', 'all (hash diff)', '976.6 KiB/s', '2.1 s']);
      expect(lines).toContain(
        'root: extents cost a full read of the disk here (hash diff): not listed; the sync reads it all',
      );
      expect(reads).toHaveBeenCalledTimes(0);
      expect(existsSync(join(dir, 'plan-localdisk-state', 'snapshots'))).toBe(false);
    } finally {
      reads.mockRestore();
    }
  });
});
