import { createProgressDisplay } from '@syncproxy/cli';
import type { HostSyncPhaseEvent, TransferProgress } from '@syncproxy/core';
import { describe, expect, it } from 'vitest';

const MiB = 1024 ** 2;

function progress(elapsedMs: number, bytesDone: number, bytesTotal: number | undefined): TransferProgress {
  const bytesPerSecond = elapsedMs > 0 ? (bytesDone / elapsedMs) * 1000 : 0;
  return {
    bytesDone,
    bytesTotal,
    chunksDone: 0,
    chunksTotal: undefined,
    bytesPerSecond,
    etaMs:
      bytesTotal === undefined || bytesPerSecond === 0
        ? undefined
        : ((bytesTotal - bytesDone) / bytesPerSecond) * 1000,
    elapsedMs,
    retries: 0,
  };
}

describe('progress without a TTY', () => {
  it('prints one plain line per disk per interval of transfer time, and the last figures at the end', () => {
    const lines: string[] = [];
    const display = createProgressDisplay({
      output: { isTTY: false, write: (text: string) => lines.push(text) },
      plainIntervalMs: 1000,
    });
    const onA = display.track('vol-a');
    const onB = display.track('vol-b');
    onA(progress(0, 0, 64 * MiB));
    onA(progress(500, 8 * MiB, 64 * MiB));
    onB(progress(100, 0, undefined));
    onA(progress(1000, 16 * MiB, 64 * MiB));
    onA(progress(1999, 30 * MiB, 64 * MiB));
    onA(progress(2000, 32 * MiB, 64 * MiB));
    onA(progress(4000, 64 * MiB, 64 * MiB));
    display.end('vol-a', 'done');
    // A disk whose last figures fell inside an interval gets them at its end.
    const onC = display.track('vol-c');
    onC(progress(0, 0, 8 * MiB));
    onC(progress(500, 8 * MiB, 8 * MiB));
    display.end('vol-c', 'done');
    display.end('vol-b', 'interrupted');
    display.stop();
    expect(lines).toEqual([
      'vol-a    0%  0 B / 64.0 MiB  0 B/s  ETA -\n',
      'vol-b    ?%  0 B / ?  0 B/s  ETA -\n',
      'vol-a   25%  16.0 MiB / 64.0 MiB  16.0 MiB/s  ETA 3.0 s\n',
      'vol-a   50%  32.0 MiB / 64.0 MiB  16.0 MiB/s  ETA 2.0 s\n',
      'vol-a  100%  64.0 MiB / 64.0 MiB  16.0 MiB/s  ETA 0 ms\n',
      'vol-c    0%  0 B / 8.0 MiB  0 B/s  ETA -\n',
      'vol-c  100%  8.0 MiB / 8.0 MiB  16.0 MiB/s  ETA 0 ms\n',
      'vol-b  interrupted\n',
    ]);
  });
});

describe('data bytes and logical bytes', () => {
  const withData = (elapsedMs: number, bytesDone: number, bytesTotal: number, dataBytes: number) => ({
    ...progress(elapsedMs, bytesDone, bytesTotal),
    dataBytes,
    dataBytesPerSecond: (dataBytes / elapsedMs) * 1000,
  });

  it('a plain line shows the logical rate and the data bytes with their own rate', () => {
    const lines: string[] = [];
    const display = createProgressDisplay({
      output: { isTTY: false, write: (text: string) => lines.push(text) },
      plainIntervalMs: 1000,
    });
    // An almost empty disk: 32 MiB of 64 done in 1 s, of which 1 MiB was data.
    display.track('vol-a')(withData(1000, 32 * MiB, 64 * MiB, MiB));
    expect(lines).toEqual([
      'vol-a   50%  32.0 MiB / 64.0 MiB  32.0 MiB/s logical  data 1.0 MiB at 1.0 MiB/s  ETA 1.0 s\n',
    ]);
  });

  it("a bar on a TTY shows the ETA with its unit (not cli-progress's bare seconds)", () => {
    let text = '';
    const output = {
      isTTY: true,
      columns: 200,
      write: (chunk: string) => {
        text += chunk;
        return true;
      },
      cursorTo: () => true,
      moveCursor: () => true,
      clearLine: () => true,
      clearScreenDown: () => true,
      on: () => output,
      removeListener: () => output,
    };
    const display = createProgressDisplay({ output });
    const on = display.track('vol-a');
    on(withData(1000, 16 * MiB, 64 * MiB, 4 * MiB));
    display.end('vol-a', 'done');
    display.stop();
    expect(text).toContain('16.0 MiB / 64.0 MiB  16.0 MiB/s logical  data 4.0 MiB at 4.0 MiB/s  ETA 3.0 s');
  });
});

describe('steps of a sync (snapshot wait, verification, clean-up)', () => {
  const phase = (
    name: HostSyncPhaseEvent['phase'],
    state: HostSyncPhaseEvent['state'],
    elapsedMs: number,
    more: Partial<HostSyncPhaseEvent> = {},
  ): HostSyncPhaseEvent => ({ type: 'phase', phase: name, state, elapsedMs, ...more });

  it('without a TTY: a line per interval of the step, with bytes where it counts them, and one at its end; short steps stay silent', () => {
    const lines: string[] = [];
    const display = createProgressDisplay({
      output: { isTTY: false, write: (text: string) => lines.push(text) },
      plainIntervalMs: 2000,
    });
    display.phase(phase('snapshot', 'start', 0));
    for (const at of [1000, 2000, 3000, 4000, 5000]) display.phase(phase('snapshot', 'progress', at));
    display.phase(phase('snapshot', 'end', 5500));
    // Under the interval: nothing at all.
    display.phase(phase('transfer', 'start', 0, { diskId: 'vol-a' }));
    display.phase(phase('transfer', 'end', 0, { diskId: 'vol-a' }));
    display.phase(phase('cleanup', 'start', 0));
    display.phase(phase('cleanup', 'progress', 1000));
    display.phase(phase('cleanup', 'end', 1500));
    const bytes = (bytesDone: number) => ({ diskId: 'vol-a', bytesDone, bytesTotal: 64 * MiB });
    display.phase(phase('verify', 'start', 0, { diskId: 'vol-a' }));
    display.phase(phase('verify', 'progress', 1000, bytes(8 * MiB)));
    display.phase(phase('verify', 'progress', 2000, bytes(16 * MiB)));
    display.phase(phase('verify', 'progress', 3000, bytes(24 * MiB)));
    display.phase(phase('verify', 'progress', 4000, bytes(32 * MiB)));
    display.phase(phase('verify', 'end', 8000, bytes(64 * MiB)));
    display.stop();
    expect(lines).toEqual([
      'snapshot  2.0 s\n',
      'snapshot  4.0 s\n',
      'snapshot  done in 5.5 s\n',
      'vol-a  verify   25%  16.0 MiB / 64.0 MiB  2.0 s\n',
      'vol-a  verify   50%  32.0 MiB / 64.0 MiB  4.0 s\n',
      'vol-a  verify  done in 8.0 s\n',
    ]);
  });

  it('a step under 2 s shows nothing, however short the interval', () => {
    const lines: string[] = [];
    const display = createProgressDisplay({
      output: { isTTY: false, write: (text: string) => lines.push(text) },
      plainIntervalMs: 1,
    });
    display.phase(phase('snapshot', 'start', 0));
    display.phase(phase('snapshot', 'progress', 1000));
    display.phase(phase('snapshot', 'end', 1999));
    display.phase(phase('cleanup', 'start', 0));
    display.phase(phase('cleanup', 'progress', 1000));
    display.phase(phase('cleanup', 'progress', 2000));
    display.phase(phase('cleanup', 'end', 2100));
    expect(lines).toEqual(['cleanup  2.0 s\n', 'cleanup  done in 2.1 s\n']);
  });
});

describe('steps of a sync on a TTY', () => {
  it('a snapshot wait shows before any bar, once a second of the wait', () => {
    let text = '';
    const output = {
      isTTY: true,
      columns: 200,
      write: (chunk: string) => {
        text += chunk;
        return true;
      },
      cursorTo: () => true,
      moveCursor: () => true,
      clearLine: () => true,
      clearScreenDown: () => true,
      on: () => output,
      removeListener: () => output,
    };
    const display = createProgressDisplay({ output });
    const at = (state: HostSyncPhaseEvent['state'], elapsedMs: number): HostSyncPhaseEvent => ({
      type: 'phase',
      phase: 'snapshot',
      state,
      elapsedMs,
    });
    display.phase(at('start', 0));
    display.phase(at('progress', 1000));
    display.phase(at('progress', 2000));
    display.phase(at('end', 2400));
    display.stop();
    expect(text).toContain('snapshot  2.0 s\nsnapshot  done in 2.4 s\n');
    expect(text).not.toContain('snapshot  1.0 s');
  });
});
