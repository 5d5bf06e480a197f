import { randomUUID } from 'node:crypto';
import type { MountSlot, MountSlotProvider } from '../contracts/connector.js';
import type { ProxyScheduler } from '../contracts/scheduler.js';
import { SyncproxyError } from '../errors/syncproxy-error.js';

export interface SchedulerMountSlotsOptions {
  /** The platform as registered in the scheduler (its bindings name it). */
  platformId: string;
  /**
   * The proxy this process is. A slot the scheduler places on another proxy is
   * given back and the acquire fails `no-capacity` (retryable), since the disk
   * is attached here whatever the scheduler chose.
   */
  proxyId?: string;
  /** Wait up to this long for a free slot (the scheduler's `assign({ waitMs })`); default 0. */
  waitMs?: number;
}

/**
 * Mount slots taken from a {@link ProxyScheduler}: each acquire assigns a task
 * of one mount slot (`mount:<platform>:<disk>:<uuid>`) and each release
 * releases it, so the scheduler's placement and `load.mountSlotsUsed` count
 * the disks attached across all proxies and control-plane nodes.
 */
export function mountSlotsFromScheduler(
  scheduler: ProxyScheduler,
  options: SchedulerMountSlotsOptions,
): MountSlotProvider {
  if (typeof options?.platformId !== 'string' || options.platformId === '') {
    throw new SyncproxyError('mountSlotsFromScheduler: platformId is required', {
      code: 'config',
      retryable: false,
    });
  }
  const { platformId, proxyId, waitMs } = options;
  return {
    async acquire(request): Promise<MountSlot> {
      const taskId = `mount:${request.platform}:${request.diskId}:${randomUUID()}`;
      const assignment = await scheduler.assign(
        { id: taskId, platformId, mountSlots: 1 },
        {
          ...(waitMs !== undefined ? { waitMs } : {}),
          ...(request.signal ? { signal: request.signal } : {}),
        },
      );
      if (proxyId !== undefined && assignment.proxyId !== proxyId) {
        await scheduler.release(taskId);
        throw new SyncproxyError(
          `no mount slot for disk ${request.diskId} on proxy ${proxyId}: the scheduler placed it on proxy ${assignment.proxyId} (proxy ${proxyId} is full, down or not bound to platform ${platformId})`,
          {
            code: 'no-capacity',
            retryable: true,
            platform: request.platform,
            details: { proxyId, placedOn: assignment.proxyId, platformId, diskId: request.diskId },
          },
        );
      }
      let released = false;
      return {
        proxyId: assignment.proxyId,
        async release() {
          if (released) return;
          released = true;
          await scheduler.release(taskId);
        },
      };
    },
  };
}
