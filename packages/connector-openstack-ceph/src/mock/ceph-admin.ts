import { spawn } from 'node:child_process';

/** The real test cluster the mock's volumes live in, as scripts/ceph/up.sh describes it (cluster.json). */
export interface MockCephCluster {
  /** `host:port` of the monitor. */
  monHost: string;
  pool: string;
  /** A ceph.conf with client.admin's keyring: the mock creates and writes images as admin. */
  conf: string;
  /** The user and key the connector's config gets (client.cinder in up.sh). */
  user: string;
  key: string;
}

/** Runs `rbd` as client.admin for the mock (setup, writes, truth reads); stdout as bytes. */
export function adminRbd(cluster: MockCephCluster, args: string[], input?: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('rbd', ['--conf', cluster.conf, ...args], {
      shell: false,
      stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => {
      err = (err + c.toString()).slice(-4000);
    });
    child.once('error', reject);
    child.once('close', (status) => {
      if (status === 0) resolve(Buffer.concat(out));
      else reject(new Error(`mock: rbd ${args[0]} failed (exit ${status}): ${err.trim()}`));
    });
    if (input) child.stdin!.end(input);
  });
}
