import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareTargetDirectory } from '../src/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'syncproxy-target-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('prepareTargetDirectory', () => {
  it('creates the missing levels 0700 and returns the absolute path; an existing directory is fine', async () => {
    const target = join(dir, 'a', 'b', 'c');
    expect(await prepareTargetDirectory(target)).toBe(target);
    expect((await stat(target)).isDirectory()).toBe(true);
    expect((await stat(join(dir, 'a'))).mode & 0o777).toBe(0o700);
    expect(await prepareTargetDirectory(target)).toBe(target);
  });

  it('refuses a target under /proc with an io error instead of spinning', async () => {
    await expect(prepareTargetDirectory('/proc/syncproxy-x/images')).rejects.toMatchObject({
      code: 'io',
      message:
        'cannot use /proc/syncproxy-x/images as the target directory: /proc does not take a new directory /proc/syncproxy-x (ENOENT)',
    });
  });

  it('refuses a target below a regular file', async () => {
    await writeFile(join(dir, 'file'), 'x');
    await expect(prepareTargetDirectory(join(dir, 'file', 'images'))).rejects.toMatchObject({
      code: 'io',
      message: `cannot use ${join(dir, 'file', 'images')} as the target directory: ${join(dir, 'file')} is not a directory`,
    });
  });
});
