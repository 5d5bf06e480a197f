#!/usr/bin/env node
// Follows docs/writing-a-connector.md the way a newcomer would: in a fresh
// directory outside the monorepo, with @syncproxy/core and @syncproxy/testkit
// packed by `pnpm pack` (as they would come from the registry), it writes
// every `file=` block of the guide, installs, type-checks and runs the
// contract suite. Needs only the npm registry (for zod, vitest, typescript).
//
//   node scripts/newcomer-check.mjs [--keep]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const keep = process.argv.includes('--keep');
const work = mkdtempSync(join(tmpdir(), 'syncproxy-newcomer-'));
const packs = join(work, 'packs');
const project = join(work, 'connector-localdisk');
mkdirSync(packs);
mkdirSync(project);

function run(command, args, cwd) {
  console.log(`\n$ ${[command, ...args].join(' ')}   (in ${cwd})`);
  const r = spawnSync(command, args, { cwd, stdio: 'inherit', env: { ...process.env, CI: 'true' } });
  if (r.status !== 0) {
    console.error(
      `\nnewcomer check failed: "${[command, ...args].join(' ')}" exited with ${r.status ?? r.signal}`,
    );
    if (!keep) rmSync(work, { recursive: true, force: true });
    else console.error(`kept ${work}`);
    process.exit(1);
  }
}

// The same pnpm the repository pins, whether or not one is installed.
const hasPnpm = spawnSync('pnpm', ['--version'], { stdio: 'ignore' }).status === 0;
const pnpm = (args, cwd) =>
  hasPnpm ? run('pnpm', args, cwd) : run('npx', ['-y', 'pnpm@10.34.9', ...args], cwd);

// 1. Build and pack what the guide installs.
pnpm(['--filter', '@syncproxy/core', '--filter', '@syncproxy/testkit', 'run', 'build'], root);
for (const name of ['core', 'testkit'])
  pnpm(['pack', '--pack-destination', packs], join(root, 'packages', name));
const tarball = (name) => {
  const file = readdirSync(packs).find((f) => f.startsWith(`syncproxy-${name}-`) && f.endsWith('.tgz'));
  if (!file) throw new Error(`pnpm pack left no syncproxy-${name}-*.tgz in ${packs}`);
  return join(packs, file);
};

// 2. Write every file the guide shows, as shown.
const guide = readFileSync(join(root, 'docs', 'writing-a-connector.md'), 'utf8');
const blocks = [...guide.matchAll(/^```\w+ file=(\S+)\n([\s\S]*?)^```$/gm)];
if (blocks.length === 0) throw new Error('docs/writing-a-connector.md has no file= blocks');
for (const [, path, body] of blocks) {
  mkdirSync(dirname(join(project, path)), { recursive: true });
  writeFileSync(join(project, path), body);
  console.log(`wrote ${path} (${body.length} bytes) from the guide`);
}

// 3. The only change to the guide: the unpublished packages come from the tarballs.
const pkgPath = join(project, 'package.json');
const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
for (const name of ['core', 'testkit']) pkg.devDependencies[`@syncproxy/${name}`] = `file:${tarball(name)}`;
writeFileSync(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`);

// 4. Follow the guide: install, type-check, test.
run('npm', ['install', '--no-audit', '--no-fund'], project);
run('npx', ['tsc', '--noEmit'], project);
run('npx', ['vitest', 'run'], project);

if (keep) console.log(`\nkept ${work}`);
else rmSync(work, { recursive: true, force: true });
console.log(
  '\nnewcomer check passed: the guide, followed outside the monorepo, yields a connector that passes the contract suite',
);
