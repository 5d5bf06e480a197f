import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  changeBlockSizeFor,
  IscsiadmInitiator,
  oracleConfigSchema,
  SgLbaStatusScanner,
} from '@syncproxy/connector-oracle';
import { createOracleMockPlatform, type OracleMockPlatform } from '@syncproxy/connector-oracle/mock';
import { createJsonLogger, SyncproxyError } from '@syncproxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorForMocks } from './helpers.js';

const MIB = 1024 * 1024;
const PASSPHRASE = 'correct horse battery staple 42';

/** Every line of the PEM body that is long enough to identify it, and the passphrase. */
function secretsOf(pem: string): string[] {
  return [PASSPHRASE, ...pem.split('\n').filter((line) => line.length >= 16 && !line.startsWith('-----'))];
}

function leaks(text: string, secrets: string[]): string[] {
  return secrets.filter((s) => text.includes(s));
}

describe('oracle secrets', () => {
  let platform: OracleMockPlatform;
  let work: string;
  const bound = connectorForMocks();

  beforeAll(async () => {
    platform = await createOracleMockPlatform({ passphrase: PASSPHRASE });
    bound.bind(platform.oci);
    work = await mkdtemp(join(tmpdir(), 'oracle-secrets-'));
  });
  afterAll(async () => {
    await platform.close();
    await rm(work, { recursive: true, force: true });
  });

  it('an encrypted key with its passphrase works, from a PEM and from a file path', async () => {
    const ref = await platform.createHost({ name: 'db-1', disks: [{ sizeBytes: MIB }] });
    const fromPem = await bound.connector.connect(platform.config(), platform.context());
    expect((await fromPem.listHosts()).map((h) => h.id)).toContain(ref.id);
    await fromPem.close();
    const keyFile = join(work, 'oci_api_key.pem');
    await writeFile(keyFile, platform.oci.privateKeyPem, { mode: 0o600 });
    const { privateKey: _pem, ...rest } = platform.config() as Record<string, unknown>;
    const fromFile = await bound.connector.connect({ ...rest, privateKeyPath: keyFile }, platform.context());
    expect((await fromFile.listHosts()).map((h) => h.id)).toContain(ref.id);
    await fromFile.close();
  });

  it('the private key and its passphrase never appear in logs or errors (util.inspect included)', async () => {
    const lines: string[] = [];
    const logger = createJsonLogger({ level: 'debug', write: (line) => lines.push(line) });
    const secrets = secretsOf(platform.oci.privateKeyPem);
    const errors: unknown[] = [];
    const config = platform.config() as Record<string, unknown>;
    const keyFile = join(work, 'key-for-errors.pem');
    await writeFile(keyFile, platform.oci.privateKeyPem, { mode: 0o600 });
    const { privateKey: _pem, ...withoutPem } = config;
    const attempts: unknown[] = [
      { ...config, passphrase: 'a wrong passphrase' },
      { ...config, fingerprint: '00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff' },
      {
        ...withoutPem,
        privateKeyPath: keyFile,
        fingerprint: '00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff',
      },
      { ...config, region: 'nowhere' },
      { ...config, privateKeyPath: keyFile },
    ];
    for (const attempt of attempts) {
      try {
        const session = await bound.connector.connect(attempt, { ...platform.context(), logger });
        try {
          await session.verify();
        } finally {
          await session.close();
        }
      } catch (error) {
        errors.push(error);
      }
    }
    expect(errors).toHaveLength(attempts.length);
    expect(errors.map((e) => (SyncproxyError.isInstance(e) ? e.code : 'raw'))).toEqual([
      'config',
      'auth',
      'auth',
      'config',
      'config',
    ]);
    const text = [
      ...lines,
      ...errors.map((e) => inspect(e, { depth: 10 })),
      ...errors.map((e) => JSON.stringify(e)),
    ].join('\n');
    expect(leaks(text, secrets)).toEqual([]);
  });

  it('the proxy-side tools never put the key or the passphrase on a command line', async () => {
    // Stand-ins for iscsiadm and sg_get_lba_status that record their argv.
    const argvLog = join(work, 'argv.log');
    const iscsiadm = join(work, 'iscsiadm');
    await writeFile(iscsiadm, `#!/bin/sh\necho "iscsiadm $*" >> '${argvLog}'\n`);
    const sg = join(work, 'sg_get_lba_status');
    // 8 MiB of 512-byte blocks: the first MiB mapped, the rest deallocated, in two descriptors.
    await writeFile(
      sg,
      `#!/bin/sh\necho "sg_get_lba_status $*" >> '${argvLog}'\necho "0x0  0x800  0"\necho "0x800  0x3800  1"\n`,
    );
    await chmod(iscsiadm, 0o755);
    await chmod(sg, 0o755);
    const target = { iqn: 'iqn.2015-12.com.oracleiaas:abc', ipv4: '169.254.2.2', port: 3260 };
    const initiator = new IscsiadmInitiator({ command: iscsiadm });
    await initiator.login(target);
    await initiator.logout(target);
    const scanner = new SgLbaStatusScanner({ command: sg, devices: { sysBlockDir: join(work, 'no-sys') } });
    const ranges = await scanner.scan({
      devicePath: '/dev/sdq',
      diskSize: 8 * MIB,
      changeBlockSizeBytes: MIB,
    });
    expect(ranges).toEqual([{ offset: 0, length: MIB, kind: 'data' }]);
    const argv = await readFile(argvLog, 'utf8');
    expect(argv.trim().split('\n')).toEqual([
      'iscsiadm -m node -o new -T iqn.2015-12.com.oracleiaas:abc -p 169.254.2.2:3260',
      'iscsiadm -m node -T iqn.2015-12.com.oracleiaas:abc -p 169.254.2.2:3260 -l',
      'iscsiadm -m node -T iqn.2015-12.com.oracleiaas:abc -p 169.254.2.2:3260 -u',
      'iscsiadm -m node -o delete -T iqn.2015-12.com.oracleiaas:abc -p 169.254.2.2:3260',
      'sg_get_lba_status --brief --lba=0 --scan-len=16384 /dev/sdq',
    ]);
    expect(leaks(argv, secretsOf(platform.oci.privateKeyPem))).toEqual([]);
  });

  it('the GET LBA STATUS scan goes in windows of at most 1 GiB', async () => {
    const argvLog = join(work, 'windows.log');
    const sg = join(work, 'sg_windows');
    // Each answer: one descriptor covering the whole window asked for, deallocated.
    await writeFile(
      sg,
      `#!/bin/sh\necho "$*" >> '${argvLog}'\nlba=$(echo "$*" | sed -n 's/.*--lba=\\([0-9]*\\).*/\\1/p')\nlen=$(echo "$*" | sed -n 's/.*--scan-len=\\([0-9]*\\).*/\\1/p')\necho "$lba $len 1"\n`,
    );
    await chmod(sg, 0o755);
    const scanner = new SgLbaStatusScanner({ command: sg, devices: { sysBlockDir: join(work, 'no-sys') } });
    const ranges = await scanner.scan({
      devicePath: '/dev/sdr',
      diskSize: 2.5 * 1024 * MIB,
      changeBlockSizeBytes: MIB,
    });
    expect(ranges).toEqual([]);
    expect((await readFile(argvLog, 'utf8')).trim().split('\n')).toEqual([
      '--brief --lba=0 --scan-len=2097152 /dev/sdr',
      '--brief --lba=2097152 --scan-len=2097152 /dev/sdr',
      '--brief --lba=4194304 --scan-len=1048576 /dev/sdr',
    ]);
  });
});

describe('oracle config and block size', () => {
  const valid = {
    tenancyId: 'ocid1.tenancy.oc1..aaaaaaaa',
    userId: 'ocid1.user.oc1..aaaaaaaa',
    fingerprint: '12:34:56:78:90:ab:cd:ef:12:34:56:78:90:ab:cd:ef',
    region: 'us-ashburn-1',
    privateKeyPath: '/etc/syncproxy/oci_api_key.pem',
    proxyInstanceId: 'ocid1.instance.oc1.iad.anuwcljt',
    proxyAvailabilityDomain: 'Uocm:US-ASHBURN-AD-1',
  };

  it.each([
    ['tenancyId', 'ocid1.user.oc1..aaaa'],
    ['userId', 'not-an-ocid'],
    ['fingerprint', '12345678'],
    ['proxyInstanceId', 'ocid1.volume.oc1.iad.aaaa'],
    ['region', 'Ashburn'],
  ])('a bad %s is refused naming the field', (field, value) => {
    const result = oracleConfigSchema.safeParse({ ...valid, [field]: value });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toEqual([field]);
  });

  it('the key is given exactly once, as a PEM or as a path', () => {
    expect(oracleConfigSchema.safeParse(valid).success).toBe(true);
    const both = oracleConfigSchema.safeParse({ ...valid, privateKey: '-----BEGIN PRIVATE KEY-----\nx\n' });
    expect(both.error?.issues.map((i) => i.path.join('.'))).toEqual(['privateKey']);
    const { privateKeyPath: _path, ...none } = valid;
    expect(oracleConfigSchema.safeParse(none).error?.issues.map((i) => i.path.join('.'))).toEqual([
      'privateKey',
    ]);
  });

  it('the delta block size is the largest power of 2 from 4 KiB to 1 MiB that divides the chunk size', () => {
    expect(changeBlockSizeFor(4 * MIB)).toBe(MIB);
    expect(changeBlockSizeFor(MIB)).toBe(MIB);
    expect(changeBlockSizeFor(256 * 1024)).toBe(256 * 1024);
    expect(changeBlockSizeFor(3 * 64 * 1024)).toBe(64 * 1024);
    expect(changeBlockSizeFor(4096)).toBe(4096);
    expect(changeBlockSizeFor(6000)).toBe(4096);
  });
});
