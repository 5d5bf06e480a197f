#!/usr/bin/env node
// Keeps every package the same shape: dual ESM/CJS exports with types per
// condition, sideEffects false, files, README sections; then publint and attw.
// Then a production install: each connector's packed tarball, `npm install`ed
// into a fresh project, brings no test tooling (testkit, selfsigned, pkijs,
// vitest), and its `./mock` entry says what to add when imported there.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dirs = readdirSync(join(root, 'packages')).filter((d) =>
  existsSync(join(root, 'packages', d, 'package.json')),
);
const problems = [];
const packs = mkdtempSync(join(tmpdir(), 'syncproxy-packs-'));
const tarballs = new Map();
// The root's tools (pnpm, publint, attw) come first on PATH.
const env = { ...process.env, PATH: `${join(root, 'node_modules', '.bin')}${delimiter}${process.env.PATH}` };

for (const dir of dirs) {
  const abs = join(root, 'packages', dir);
  const pkg = JSON.parse(readFileSync(join(abs, 'package.json'), 'utf8'));
  const where = `packages/${dir}`;
  if (pkg.name !== `@syncproxy/${dir}`) problems.push(`${where}: name must be @syncproxy/${dir}`);
  if (pkg.sideEffects !== false) problems.push(`${where}: sideEffects must be false`);
  for (const f of ['dist', 'README.md', 'CHANGELOG.md']) {
    if (!pkg.files?.includes(f)) problems.push(`${where}: files must include ${f}`);
  }
  const dot = pkg.exports?.['.'];
  if (!dot?.import?.types || !dot?.require?.types)
    problems.push(`${where}: exports["."] needs import/require with types`);
  if (dir.startsWith('connector-')) {
    if (!pkg.exports?.['./mock']) problems.push(`${where}: connectors export "./mock"`);
    if (!pkg.peerDependencies?.['@syncproxy/core'])
      problems.push(`${where}: @syncproxy/core must be a peer dependency`);
  }
  const readme = existsSync(join(abs, 'README.md')) ? readFileSync(join(abs, 'README.md'), 'utf8') : '';
  for (const section of ['## Install', '## Example']) {
    if (!readme.includes(section)) problems.push(`${where}: README.md lacks a "${section}" section`);
  }
  if (dir.startsWith('connector-')) {
    for (const section of ['## Configuration', '## Permissions']) {
      if (!readme.includes(section)) problems.push(`${where}: README.md lacks a "${section}" section`);
    }
  }
  // Lint what would be published: the tarball pnpm packs (workspace: ranges rewritten).
  const packDir = mkdtempSync(join(tmpdir(), 'syncproxy-pack-'));
  const pack = spawnSync('pnpm', ['pack', '--pack-destination', packDir], {
    cwd: abs,
    encoding: 'utf8',
    env,
  });
  const tarball = readdirSync(packDir).find((f) => f.endsWith('.tgz'));
  if (pack.status !== 0 || !tarball) {
    problems.push(`${where}: pnpm pack failed: ${pack.stderr}`);
    continue;
  }
  copyFileSync(join(packDir, tarball), join(packs, tarball));
  tarballs.set(pkg.name, join(packs, tarball));
  for (const [tool, args] of [
    ['publint', ['--strict', '--pack', 'pnpm']],
    ['attw', [join(packDir, tarball), '--profile', 'node16']],
  ]) {
    const r = spawnSync(tool, args, { cwd: abs, encoding: 'utf8', env });
    process.stdout.write(`${where}: ${tool}\n${r.stdout}${r.stderr}`);
    if (r.status !== 0) problems.push(`${where}: ${tool} reported problems (exit ${r.status})`);
  }
  rmSync(packDir, { recursive: true, force: true });
}

// What `npm install <connector>` brings to a product: no test tooling.
const READ_WORKER_CHECK = `
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
const require = createRequire(join(process.cwd(), 'check.js'));
const worker = new Worker(join(dirname(require.resolve('@syncproxy/nbd')), 'read-worker.js'), { execArgv: [] });
worker.postMessage({ type: 'open', client: 1, options: { uri: 'nbd://127.0.0.1:1/', connectTimeoutMs: 5000 } });
const reply = await new Promise((resolve, reject) => {
  worker.once('message', resolve);
  worker.once('error', reject);
});
await worker.terminate();
if (reply.type !== 'failed' || reply.error.code !== 'network') {
  console.error('unexpected reply: ' + JSON.stringify(reply));
  process.exit(1);
}
`;
const TEST_ONLY = ['@syncproxy/testkit', 'selfsigned', 'pkijs', 'vitest'];
function installedNames(dir, names = new Set()) {
  const modules = join(dir, 'node_modules');
  if (!existsSync(modules)) return names;
  for (const entry of readdirSync(modules)) {
    if (entry.startsWith('.')) continue;
    const scoped = entry.startsWith('@')
      ? readdirSync(join(modules, entry)).map((n) => `${entry}/${n}`)
      : [entry];
    for (const name of scoped) {
      names.add(name);
      installedNames(join(modules, name), names);
    }
  }
  return names;
}
for (const dir of dirs.filter((d) => d.startsWith('connector-'))) {
  const name = `@syncproxy/${dir}`;
  if (!tarballs.has(name)) continue;
  const project = mkdtempSync(join(tmpdir(), 'syncproxy-install-'));
  // Unpublished workspace packages come from their tarballs; zod (the peer) from the registry.
  const dependencies = { zod: '4.6.7' };
  for (const [n, file] of tarballs)
    if (!n.endsWith('testkit') && !n.endsWith('cli')) dependencies[n] = `file:${file}`;
  for (const other of dirs.filter((d) => d.startsWith('connector-') && d !== dir))
    delete dependencies[`@syncproxy/${other}`];
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'product', private: true, type: 'module', dependencies }, null, 2)}\n`,
  );
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: project,
    encoding: 'utf8',
  });
  if (install.status !== 0) {
    problems.push(`${name}: npm install in a fresh project failed: ${install.stderr}`);
    rmSync(project, { recursive: true, force: true });
    continue;
  }
  const installed = installedNames(project);
  const unwanted = TEST_ONLY.filter((n) => installed.has(n));
  if (unwanted.length > 0) problems.push(`${name}: npm install brings test tooling: ${unwanted.join(', ')}`);
  const load = (entry) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', `await import('${entry}')`], {
      cwd: project,
      encoding: 'utf8',
    });
  const main = load(name);
  if (main.status !== 0) problems.push(`${name}: import '${name}' failed in a fresh project: ${main.stderr}`);
  const mock = load(`${name}/mock`);
  const wanted = `${name}/mock needs @syncproxy/testkit, an optional peer dependency that is not installed: add it to your devDependencies (npm install --save-dev @syncproxy/testkit)`;
  // A mock that needs the testkit at run time must say so; one that does not (localdisk) just loads.
  if (mock.status !== 0 && !mock.stderr.includes(wanted))
    problems.push(
      `${name}: import '${name}/mock' without the testkit must say "${wanted}"; got: ${mock.stderr}`,
    );
  if (dir === 'connector-vmware') {
    // NBD's read threads run dist/read-worker.js, loaded by path beside the index: it must be in the
    // tarball and run on a production install (it bundles what it takes from core). Asked to open a
    // client on a port where nothing listens, it must answer with a typed network error.
    const worker = spawnSync(process.execPath, ['--input-type=module', '-e', READ_WORKER_CHECK], {
      cwd: project,
      encoding: 'utf8',
    });
    if (worker.status !== 0)
      problems.push(
        `@syncproxy/nbd: dist/read-worker.js does not run from a production install (exit ${worker.status}, ${worker.signal}): ${worker.stderr}${worker.stdout}${worker.error ?? ''}`,
      );
    else console.log('@syncproxy/nbd: dist/read-worker.js runs from a production install');
  }
  console.log(
    `${name}: production install of ${installed.size} packages, none of ${TEST_ONLY.join(', ')}; ./mock ${mock.status === 0 ? 'loads without the testkit' : 'says what to add'}`,
  );
  rmSync(project, { recursive: true, force: true });
}
rmSync(packs, { recursive: true, force: true });

if (problems.length > 0) {
  console.error(`\npackage check failed:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log(`\npackage check: ${dirs.length} packages OK`);
