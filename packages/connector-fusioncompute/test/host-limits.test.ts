import { CnaLimiter } from '@syncproxy/connector-fusioncompute';
import { describe, expect, it } from 'vitest';

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe('CnaLimiter', () => {
  it('hands a freed connection to the first waiter: a newcomer in the same tick never makes it 2 of 1', async () => {
    const limiter = new CnaLimiter('cna', 1, 1);
    let running = 0;
    let peak = 0;
    const job = (g: { opened: Promise<void> }) => async () => {
      running++;
      peak = Math.max(peak, running);
      await g.opened;
      running--;
    };
    const a = gate();
    const b = gate();
    const c = gate();
    const first = limiter.withConnection(job(a));
    const second = limiter.withConnection(job(b));
    await Promise.resolve();
    a.open();
    await first;
    const third = limiter.withConnection(job(c)); // arrives as the first one ends
    await new Promise((resolve) => setImmediate(resolve));
    b.open();
    c.open();
    await Promise.all([second, third]);
    expect(peak).toBe(1);
    expect(limiter.connections).toBe(0);
  });

  it('an idle holder gives its volume slot to a waiting reader; a busy one keeps it', async () => {
    const limiter = new CnaLimiter('cna', 8, 1);
    let busy = true;
    const yielded: string[] = [];
    const slot = await limiter.acquireVolume({
      busy: () => busy,
      yieldSlot: () => {
        yielded.push('first');
        slot.release();
      },
    });
    const waiting = limiter.acquireVolume({ busy: () => true, yieldSlot: () => {} });
    await new Promise((resolve) => setImmediate(resolve));
    expect(yielded).toEqual([]);
    busy = false;
    limiter.idle();
    const second = await waiting;
    expect(yielded).toEqual(['first']);
    expect(limiter.volumes).toBe(1);
    second.release();
    expect(limiter.volumes).toBe(0);
  });
});
