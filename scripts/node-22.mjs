// The README's commands need only Node.js and npm, of any version; the SDK needs Node 22 or later.
// Under an older Node, runNode22() fetches Node 22 from the npm registry once (npm's
// node-<platform>-<arch> package, the one CI fetches, into .tmp/node22), says so in one line, and
// runs the calling script again under it with the same arguments.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FLOOR = 22;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Returns when this process already runs on Node 22 or later; otherwise never returns. */
export async function runNode22() {
  if (Number(process.versions.node.split('.')[0]) >= FLOOR) return;
  const pkg = `node-${process.platform}-${process.arch}`;
  const prefix = join(root, '.tmp', `node${FLOOR}`);
  const node = join(prefix, 'node_modules', pkg, 'bin', 'node');
  if (!existsSync(node)) {
    const npm = spawnSync(
      'npm',
      [
        'install',
        '--prefix',
        prefix,
        '--no-save',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        `${pkg}@${FLOOR}`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    if (npm.status !== 0 || !existsSync(node)) {
      console.error(
        `Node ${process.versions.node} is older than ${FLOOR}, and fetching ${pkg}@${FLOOR} from the npm registry failed`,
      );
      process.exit(1);
    }
  }
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(
    `Node ${process.versions.node} is older than ${FLOOR}: running under Node ${version.replace(/^v/, '')} from the npm registry (${pkg}@${FLOOR}, in .tmp/node${FLOOR})`,
  );
  // Its PATH first, so that whatever the script starts as `node` is the same Node.
  const env = { ...process.env, PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}` };
  const child = spawn(node, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  // Ctrl-C reaches the child from the terminal itself (same process group): passing it on would be
  // a second Ctrl-C, which quits at once. This process waits for the child's clean stop instead.
  const ignore = () => {};
  const forward = () => child.kill('SIGTERM');
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  const [code, signal] = await new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  process.off('SIGINT', ignore);
  process.off('SIGTERM', forward);
  if (signal) process.kill(process.pid, signal);
  process.exit(code ?? 1);
}
