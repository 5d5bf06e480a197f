import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

const root = new URL('../../../', import.meta.url);

/** The `file=` code blocks of the guide: what a newcomer writes, path by path. */
async function guideFiles(): Promise<Map<string, string>> {
  const guide = await readFile(new URL('docs/writing-a-connector.md', root), 'utf8');
  const files = new Map<string, string>();
  for (const match of guide.matchAll(/^```\w+ file=(\S+)\n([\s\S]*?)^```$/gm))
    files.set(match[1]!, match[2]!);
  return files;
}

describe('docs/writing-a-connector.md', () => {
  it('shows every source file of connector-localdisk exactly as the package has it', async () => {
    const files = await guideFiles();
    const sources = ['src/config.ts', 'src/client.ts', 'src/reader.ts', 'src/index.ts', 'src/mock/index.ts'];
    expect([...files.keys()].filter((p) => p.startsWith('src/')).sort()).toEqual([...sources].sort());
    for (const path of sources) {
      const actual = await readFile(new URL(`packages/connector-localdisk/${path}`, root), 'utf8');
      expect(files.get(path), `${path} in the guide differs from the package`).toBe(actual);
    }
  });

  it('gives the newcomer a package.json, a tsconfig.json, a contract test and the config fuzz test', async () => {
    const files = await guideFiles();
    expect([...files.keys()].filter((p) => !p.startsWith('src/')).sort()).toEqual([
      'package.json',
      'test/config-fuzz.test.ts',
      'test/contract.test.ts',
      'tsconfig.json',
    ]);
    expect(files.get('test/contract.test.ts')).toContain('runConnectorContract(localdisk');
    const fuzz = await readFile(
      new URL('packages/connector-localdisk/test/config-fuzz.test.ts', root),
      'utf8',
    );
    expect(files.get('test/config-fuzz.test.ts'), 'the fuzz test in the guide differs from the package').toBe(
      fuzz,
    );
  });
});
