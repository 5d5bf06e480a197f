#!/usr/bin/env node
// Keeps every package the same shape: dual ESM/CJS exports with types per
// condition, sideEffects false, files, README sections; then publint and attw.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dirs = readdirSync(join(root, 'packages')).filter((d) =>
  existsSync(join(root, 'packages', d, 'package.json')),
);
const problems = [];
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

if (problems.length > 0) {
  console.error(`\npackage check failed:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log(`\npackage check: ${dirs.length} packages OK`);
