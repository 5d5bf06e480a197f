import type { ContractContext } from '../contract-context.js';
import { ContractViolation } from '../contract-violation.js';
import { captureResources, waitForResourcesToSettle } from '../resource-leaks.js';

/** close() leaves no socket, timer or child process open: the suite's session, then a fresh one used fully. */
export async function closeStep(ctx: ContractContext): Promise<void> {
  const { connector, config, settings } = ctx;
  const s = ctx.need(ctx.session, 'session');
  ctx.session = undefined;
  await ctx.call('close()', () => s.close());
  // First the session used by the whole suite, against what was open before it connected;
  // then a fresh session through every kind of call. Waiting for the first to settle keeps
  // a socket it leaked from closing during the second's window and hiding a leak there.
  const leaked = await waitForResourcesToSettle(
    ctx.need(ctx.resourcesBeforeSession, 'the resource count'),
    settings.settleMs,
  );
  if (leaked.length > 0) {
    throw new ContractViolation(
      `close() left open, ${settings.settleMs} ms after it resolved: ${leaked.join(', ')}`,
    );
  }
  const before = captureResources();
  const fresh = await ctx.call('connect()', () => connector.connect(config, ctx.connectorContext()));
  try {
    await ctx.call('verify()', () => fresh.verify());
    const hosts = await ctx.call('listHosts()', () => fresh.listHosts());
    const h =
      hosts.find((x) => x.id === ctx.need(ctx.host, 'the mock host').id) ??
      ctx.need(ctx.listedHost, 'the listed host');
    const snapshot = await ctx.call('createSnapshot()', () =>
      fresh.createSnapshot(h, { label: 'syncproxy contract close' }),
    );
    try {
      const reader = await ctx.call('openReader()', () => fresh.openReader(h.disks[0]!, { snapshot }));
      try {
        for await (const extent of reader.extents()) {
          await ctx.call('read()', () =>
            reader.read(extent.offset, Math.min(extent.length, reader.granularity)),
          );
          break;
        }
      } finally {
        await ctx.call('reader.close()', () => reader.close());
      }
    } finally {
      await ctx.call('deleteSnapshot()', () => fresh.deleteSnapshot(snapshot));
    }
  } finally {
    await ctx.call('close()', () => fresh.close());
  }
  const leaks = await waitForResourcesToSettle(before, settings.settleMs);
  if (leaks.length > 0) {
    throw new ContractViolation(
      `close() left open, ${settings.settleMs} ms after it resolved: ${leaks.join(', ')}`,
    );
  }
}
