import { spawnSync } from 'node:child_process';
import { readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileSink, SyncproxyError, writeFileAtomic } from '@syncproxy/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './fixtures/temp-dir.js';

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ path: dir, remove: cleanup } = await tempDir());
});
afterAll(() => cleanup());

/** The pid of a process that has exited (so no process has it, unless the kernel reused it at once). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(child.stdout);
}

describe('FileSink integrity', () => {
  it('refuses a symlink planted at the image path and leaves its target alone', async () => {
    const victim = join(dir, 'victim.txt');
    await writeFile(victim, 'precious');
    const image = join(dir, 'planted.raw');
    await symlink(victim, image);
    const sink = new FileSink(image);
    const error = await sink.open(4096).then(
      () => undefined,
      (e: unknown) => e,
    );
    await sink.close();
    expect(SyncproxyError.hasCode(error, 'io')).toBe(true);
    expect((error as Error).message).toContain('is a symbolic link');
    expect(await readFile(victim, 'utf8')).toBe('precious');
  });

  it('refuses a dangling symlink at the image path without creating its target', async () => {
    const image = join(dir, 'dangling.raw');
    const target = join(dir, 'created-through-link.raw');
    await symlink(target, image);
    const sink = new FileSink(image);
    await expect(sink.open(4096)).rejects.toMatchObject({ code: 'io' });
    await expect(stat(target)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('creates a new image 0600, or with the mode asked for', async () => {
    const plain = new FileSink(join(dir, 'private.raw'));
    await plain.open(4096);
    await plain.close();
    expect((await stat(join(dir, 'private.raw'))).mode & 0o777).toBe(0o600);
    const shared = new FileSink(join(dir, 'shared.raw'), { mode: 0o640 });
    await shared.open(4096);
    await shared.close();
    expect((await stat(join(dir, 'shared.raw'))).mode & 0o777).toBe(0o640);
  });

  it('removes the temporary files that dead writers left beside an atomic file, and only those', async () => {
    const path = join(dir, 'state.json');
    const dead = deadPid();
    const stale = [`state.json.tmp-${dead}-0`, `state.json.tmp-${dead}-17`];
    const live = `state.json.tmp-${process.ppid}-3`;
    const unrelated = ['state.json.tmp-notapid-1', `other.json.tmp-${dead}-0`];
    for (const name of [...stale, live, ...unrelated]) await writeFile(join(dir, name), 'partial');
    await writeFileAtomic(path, '{}');
    const left = await readdir(dir);
    for (const name of stale) expect(left).not.toContain(name);
    for (const name of [live, ...unrelated, 'state.json']) expect(left).toContain(name);
  });
});
