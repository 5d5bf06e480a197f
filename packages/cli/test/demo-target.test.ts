import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '@syncproxy/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-demo-target-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function demo(target: string): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const io = { stdout: { write: () => true }, stderr: { write: (t: string) => (stderr += t) }, cwd: dir };
  const code = await runCli(['demo', '-t', target, '--quiet'], io);
  return { code, stderr };
}

describe('syncproxy demo -t', () => {
  it('refuses a non-empty directory it did not make, and leaves every file in it', async () => {
    const target = join(dir, 'mine');
    await mkdir(join(target, 'photos'), { recursive: true });
    await writeFile(join(target, 'notes.txt'), 'keep me');
    await writeFile(join(target, 'photos', 'a.jpg'), 'jpeg');
    const run = await demo(target);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `error (config): demo target ${target} is not empty and was not made by syncproxy demo: it is left untouched (give an empty or new directory with --target)\n`,
    );
    expect((await readdir(target)).sort()).toEqual(['notes.txt', 'photos']);
    expect(await readFile(join(target, 'notes.txt'), 'utf8')).toBe('keep me');
    expect(await readdir(join(target, 'photos'))).toEqual(['a.jpg']);
  });

  it('refuses a file given as the target', async () => {
    const target = join(dir, 'a-file');
    await writeFile(target, 'data');
    const run = await demo(target);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`error (config): demo target ${target} is not a directory\n`);
    expect(await readFile(target, 'utf8')).toBe('data');
  });
});
