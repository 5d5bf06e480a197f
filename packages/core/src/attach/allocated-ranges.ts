import { execFile } from 'node:child_process';

export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * The data ranges of a sparse file, as lseek(SEEK_DATA/SEEK_HOLE) reports them
 * (ext4, XFS, btrfs, tmpfs). Node has no lseek, so this asks xfsprogs'
 * `xfs_io -c "seek -a -r 0"`, which walks the file with exactly those two calls
 * on any file system. Undefined when xfs_io is missing or fails: the caller
 * then reads the whole file, which is slower but never wrong.
 */
export function allocatedRanges(path: string, size: number): Promise<ByteRange[] | undefined> {
  return new Promise((resolve) => {
    execFile(
      'xfs_io',
      ['-r', '-c', 'seek -a -r 0', path],
      { encoding: 'utf8', maxBuffer: 64 << 20 },
      (error, stdout) => resolve(error ? undefined : parseSeekOutput(stdout, size)),
    );
  });
}

/**
 * Parses xfs_io's seek table ("Whence\tResult", then "DATA\t<offset>" /
 * "HOLE\t<offset>" lines in file order; the last hole is at EOF).
 */
export function parseSeekOutput(output: string, size: number): ByteRange[] | undefined {
  const marks: { kind: 'DATA' | 'HOLE'; at: number }[] = [];
  for (const line of output.split('\n')) {
    const match = /^(DATA|HOLE)\s+(\d+)/.exec(line.trim());
    if (match) marks.push({ kind: match[1] as 'DATA' | 'HOLE', at: Math.min(Number(match[2]), size) });
  }
  if (marks.length === 0) return undefined;
  const ranges: ByteRange[] = [];
  marks.forEach((mark, i) => {
    if (mark.kind !== 'DATA') return;
    const end = marks[i + 1]?.at ?? size;
    if (end > mark.at) ranges.push({ offset: mark.at, length: end - mark.at });
  });
  return ranges;
}
