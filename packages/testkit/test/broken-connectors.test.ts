import { checkConnectorContract } from '@syncproxy/testkit';
import { describe, expect, it } from 'vitest';
import { type Breakage, demoConnector, startDemoPlatform } from './fixtures/demo-platform.js';

const STEPS = {
  fullExtents: 'full sync: extents are sorted, non-overlapping, in bounds and granularity-aligned',
  fullBytes:
    'full sync: the image transferDisk writes into a FileSink equals the platform disk byte for byte',
  incrementalExtents: 'incremental: with the previous snapshot as base, the extents cover every changed byte',
  incrementalBytes: 'incremental: applied on the full image, it gives the new disk byte for byte',
  deleteSnapshot: 'deleteSnapshot(): removes the snapshots from the platform',
  notFound: 'not-found: a deleted snapshot rejects with code not-found',
  secrets: 'secrets: no config secret appears in errors, logs or returned values',
  close: 'close(): leaves no open sockets, timers or child processes',
};

/** The steps that failed on their own, with their messages, and those not run because of them. */
async function failures(breakage?: Breakage) {
  const report = await checkConnectorContract(demoConnector(breakage), { platform: startDemoPlatform });
  const failed = report.steps.filter((s) => s.status === 'failed');
  return {
    passed: report.passed,
    failed: failed.filter((s) => !s.message?.startsWith('not run:')).map((s) => [s.name, s.message]),
    notRun: failed.filter((s) => s.message?.startsWith('not run:')).map((s) => s.name),
  };
}

describe('the contract suite catches broken connectors', () => {
  it('a correct connector passes all 15 steps', async () => {
    const report = await checkConnectorContract(demoConnector(), { platform: startDemoPlatform });
    expect(report.steps.filter((s) => s.status === 'failed')).toEqual([]);
    expect(report.steps).toHaveLength(15);
    expect(report.passed).toBe(true);
  });

  it('overlapping extents fail the full-sync extents step, naming both extents', async () => {
    expect(await failures('overlapping-extents')).toEqual({
      passed: false,
      failed: [
        [
          STEPS.fullExtents,
          'full sync extents: disk vm-1-disk-0: extent #1 [0, 327680) data overlaps extent #0 [0, 65536) data; disk vm-1-disk-1: extent #1 [0, 524288) data overlaps extent #0 [0, 65536) data',
        ],
      ],
      notRun: [
        STEPS.fullBytes,
        STEPS.incrementalExtents,
        STEPS.incrementalBytes,
        STEPS.deleteSnapshot,
        STEPS.notFound,
      ],
    });
  });

  it('one wrong byte fails the byte comparison, naming its offset and both values', async () => {
    expect(await failures('wrong-byte')).toEqual({
      passed: false,
      failed: [
        [
          STEPS.fullBytes,
          'full sync: disk vm-1-disk-0: the image differs from the platform disk at byte 100 (expected 0xd6, got 0x29); 1 byte(s) differ in [0, 1048576)',
        ],
      ],
      notRun: [STEPS.incrementalBytes],
    });
  });

  it('a missed changed block fails the incremental coverage step, naming the missed bytes', async () => {
    expect(await failures('missed-block')).toEqual({
      passed: false,
      failed: [
        [
          STEPS.incrementalExtents,
          'incremental extents: disk vm-1-disk-0: missed 6977 changed byte(s) in [1045576, 1052576)',
        ],
      ],
      notRun: [STEPS.incrementalBytes, STEPS.deleteSnapshot, STEPS.notFound],
    });
  });

  it('a secret in a snapshot ref fails the secrets step, naming where it appeared but not the secret', async () => {
    expect(await failures('leaked-secret')).toEqual({
      passed: false,
      failed: [
        [
          STEPS.secrets,
          'secret leaked: a config secret (28 characters, starting "co") appears in the result of createSnapshot()',
        ],
      ],
      notRun: [],
    });
  });

  it('sockets left open by close() fail the close step, naming the sockets', async () => {
    // How many depends on how many reads the engine ran at once through the session.
    const result = await failures('leaked-socket');
    expect(result).toEqual({
      passed: false,
      failed: [
        [
          STEPS.close,
          expect.stringMatching(
            /^close\(\) left open, 2000 ms after it resolved: \d+ × socket \(TCPSocketWrap\)$/,
          ),
        ],
      ],
      notRun: [],
    });
  });
});
