import { type Clock, SyncproxyError, sleep } from '@syncproxy/core';
import type { HuaweiClient } from './client.js';

/** An ECS as `GET /v1/{project_id}/cloudservers/detail` lists it. */
export interface EcsServer {
  id: string;
  name: string;
  status: string;
  'OS-EXT-AZ:availability_zone'?: string;
  'os-extended-volumes:volumes_attached'?: Array<{ id: string; bootIndex?: string | null; device?: string }>;
  flavor?: { id?: string; name?: string };
  metadata?: Record<string, string>;
}

/** An EVS disk as `GET /v2/{project_id}/cloudvolumes/detail` lists it. */
export interface EvsVolume {
  id: string;
  name: string;
  /** GB (GiB). */
  size: number;
  status: string;
  bootable?: string;
  availability_zone?: string;
  volume_type?: string;
  metadata?: Record<string, string>;
  attachments?: Array<{ server_id: string; device?: string; attachment_id?: string }>;
  created_at?: string;
}

export interface CbrVault {
  id: string;
  name: string;
  resources: Array<{ id: string; type: string }>;
}

export interface CbrCheckpoint {
  id: string;
  status: string;
  created_at?: string;
}

/** A CBR backup of a server; `children` are its volumes' backups. */
export interface CbrBackup {
  id: string;
  checkpoint_id: string;
  resource_id: string;
  resource_type: string;
  status: string;
  name?: string;
  description?: string;
  created_at?: string;
  children?: Array<{ id: string; resource_id: string; resource_size?: number; status: string }>;
}

/** An asynchronous ECS or EVS job (`GET /v1/{project_id}/jobs/{job_id}`). */
export interface Job {
  job_id: string;
  status: 'INIT' | 'RUNNING' | 'SUCCESS' | 'FAIL';
  entities?: { volume_id?: string; server_id?: string };
  fail_reason?: string;
  error_code?: string;
}

export interface PollOptions {
  /** First wait between polls, ms. Default 2000; it grows by half each poll. */
  initialDelayMs?: number;
  /** Longest wait between polls, ms. Default 30 000. */
  maxDelayMs?: number;
  /** Give up after this long, ms. Default 2 h. */
  timeoutMs?: number;
}

/** The page size of list calls; ECS and EVS accept up to 1000, CBR 1000. */
const PAGE = 100;

/**
 * The ECS, EVS and CBR operations this connector uses, over the signed
 * client: paging, job polling and the shapes of answers. Paths follow the API
 * references (ECS `cloudservers`, EVS `cloudvolumes`, CBR v3).
 */
export class HuaweiCloudApi {
  readonly #client: HuaweiClient;
  readonly #clock: Clock;
  readonly #poll: Required<PollOptions>;

  constructor(client: HuaweiClient, clock: Clock, poll: PollOptions = {}) {
    this.#client = client;
    this.#clock = clock;
    this.#poll = {
      initialDelayMs: poll.initialDelayMs ?? 2000,
      maxDelayMs: poll.maxDelayMs ?? 30_000,
      timeoutMs: poll.timeoutMs ?? 2 * 3600_000,
    };
  }

  get client(): HuaweiClient {
    return this.#client;
  }

  /** Every ECS of the project. ECS v1 pages with `offset` = page number from 1 and `limit`. */
  async listServers(signal?: AbortSignal): Promise<EcsServer[]> {
    const servers: EcsServer[] = [];
    for (let page = 1; ; page++) {
      const answer = await this.#client.call<{ count?: number; servers?: EcsServer[] }>({
        service: 'ecs',
        operation: 'ListServersDetails',
        method: 'GET',
        path: '/v1/{project_id}/cloudservers/detail',
        query: { offset: page, limit: PAGE },
        ...(signal ? { signal } : {}),
      });
      const got = answer.servers ?? [];
      servers.push(...got);
      if (got.length < PAGE || (answer.count !== undefined && servers.length >= answer.count)) return servers;
    }
  }

  async getServer(serverId: string, signal?: AbortSignal): Promise<EcsServer> {
    const answer = await this.#client.call<{ server: EcsServer }>({
      service: 'ecs',
      operation: 'ShowServer',
      method: 'GET',
      path: `/v1/{project_id}/cloudservers/${encodeURIComponent(serverId)}`,
      ...(signal ? { signal } : {}),
    });
    return answer.server;
  }

  /** EVS disks, all or those whose metadata matches. EVS pages with an item `offset` and `limit`. */
  async listVolumes(
    options: { metadata?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<EvsVolume[]> {
    const volumes: EvsVolume[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const answer = await this.#client.call<{ count?: number; volumes?: EvsVolume[] }>({
        service: 'evs',
        operation: 'ListVolumes',
        method: 'GET',
        path: '/v2/{project_id}/cloudvolumes/detail',
        query: {
          offset,
          limit: PAGE,
          ...(options.metadata ? { metadata: JSON.stringify(options.metadata) } : {}),
        },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const got = answer.volumes ?? [];
      volumes.push(...got);
      if (got.length < PAGE || (answer.count !== undefined && volumes.length >= answer.count)) return volumes;
    }
  }

  async getVolume(volumeId: string, signal?: AbortSignal): Promise<EvsVolume> {
    const answer = await this.#client.call<{ volume: EvsVolume }>({
      service: 'evs',
      operation: 'ShowVolume',
      method: 'GET',
      path: `/v2/{project_id}/cloudvolumes/${encodeURIComponent(volumeId)}`,
      ...(signal ? { signal } : {}),
    });
    return answer.volume;
  }

  /** The server backup vault that holds the server (CBR `GET /v3/{project_id}/vaults?resource_ids=`). */
  async findVault(serverId: string, signal?: AbortSignal): Promise<CbrVault | undefined> {
    const answer = await this.#client.call<{ vaults?: CbrVault[] }>({
      service: 'cbr',
      operation: 'ListVault',
      method: 'GET',
      path: '/v3/{project_id}/vaults',
      query: { resource_ids: serverId, object_type: 'server' },
      ...(signal ? { signal } : {}),
    });
    return answer.vaults?.find((v) => v.resources.some((r) => r.id === serverId));
  }

  async createCheckpoint(
    input: { vaultId: string; serverId: string; name: string; description: string },
    signal?: AbortSignal,
  ): Promise<CbrCheckpoint> {
    const answer = await this.#client.call<{ checkpoint: CbrCheckpoint }>({
      service: 'cbr',
      operation: 'CreateCheckpoint',
      method: 'POST',
      path: '/v3/{project_id}/checkpoints',
      body: {
        checkpoint: {
          vault_id: input.vaultId,
          parameters: {
            auto_trigger: false,
            description: input.description,
            incremental: true,
            name: input.name,
            resources: [input.serverId],
          },
        },
      },
      ...(signal ? { signal } : {}),
    });
    return answer.checkpoint;
  }

  async getCheckpoint(checkpointId: string, signal?: AbortSignal): Promise<CbrCheckpoint> {
    const answer = await this.#client.call<{ checkpoint: CbrCheckpoint }>({
      service: 'cbr',
      operation: 'ShowCheckpoint',
      method: 'GET',
      path: `/v3/{project_id}/checkpoints/${encodeURIComponent(checkpointId)}`,
      ...(signal ? { signal } : {}),
    });
    return answer.checkpoint;
  }

  /** CBR backups (paged with `offset` and `limit`), by checkpoint or all. */
  async listBackups(
    filter: { checkpointId?: string; resourceId?: string; signal?: AbortSignal } = {},
  ): Promise<CbrBackup[]> {
    const backups: CbrBackup[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const answer = await this.#client.call<{ count?: number; backups?: CbrBackup[] }>({
        service: 'cbr',
        operation: 'ListBackups',
        method: 'GET',
        path: '/v3/{project_id}/backups',
        query: {
          offset,
          limit: PAGE,
          ...(filter.checkpointId ? { checkpoint_id: filter.checkpointId } : {}),
          ...(filter.resourceId ? { resource_id: filter.resourceId } : {}),
        },
        ...(filter.signal ? { signal: filter.signal } : {}),
      });
      const got = answer.backups ?? [];
      backups.push(...got);
      if (got.length < PAGE || (answer.count !== undefined && backups.length >= answer.count)) return backups;
    }
  }

  async getBackup(backupId: string, signal?: AbortSignal): Promise<CbrBackup> {
    const answer = await this.#client.call<{ backup: CbrBackup }>({
      service: 'cbr',
      operation: 'ShowBackup',
      method: 'GET',
      path: `/v3/{project_id}/backups/${encodeURIComponent(backupId)}`,
      ...(signal ? { signal } : {}),
    });
    return answer.backup;
  }

  async deleteBackup(backupId: string, signal?: AbortSignal): Promise<void> {
    await this.#client.call({
      service: 'cbr',
      operation: 'DeleteBackup',
      method: 'DELETE',
      path: `/v3/{project_id}/backups/${encodeURIComponent(backupId)}`,
      ...(signal ? { signal } : {}),
    });
  }

  /** Creates an EVS disk from a volume backup; the new volume's id once its job succeeds. */
  async createVolumeFromBackup(
    input: {
      backupId: string;
      availabilityZone: string;
      sizeGb: number;
      name: string;
      metadata: Record<string, string>;
    },
    signal?: AbortSignal,
  ): Promise<{ jobId: string }> {
    const answer = await this.#client.call<{ job_id: string }>({
      service: 'evs',
      operation: 'CreateVolume',
      method: 'POST',
      path: '/v2/{project_id}/cloudvolumes',
      body: {
        volume: {
          backup_id: input.backupId,
          availability_zone: input.availabilityZone,
          size: input.sizeGb,
          name: input.name,
          metadata: input.metadata,
        },
      },
      ...(signal ? { signal } : {}),
    });
    return { jobId: answer.job_id };
  }

  async deleteVolume(volumeId: string, signal?: AbortSignal): Promise<{ jobId: string }> {
    const answer = await this.#client.call<{ job_id: string }>({
      service: 'evs',
      operation: 'DeleteVolume',
      method: 'DELETE',
      path: `/v2/{project_id}/cloudvolumes/${encodeURIComponent(volumeId)}`,
      ...(signal ? { signal } : {}),
    });
    return { jobId: answer.job_id };
  }

  async attachVolume(serverId: string, volumeId: string, signal?: AbortSignal): Promise<{ jobId: string }> {
    const answer = await this.#client.call<{ job_id: string }>({
      service: 'ecs',
      operation: 'AttachServerVolume',
      method: 'POST',
      path: `/v1/{project_id}/cloudservers/${encodeURIComponent(serverId)}/attachvolume`,
      body: { volumeAttachment: { volumeId } },
      ...(signal ? { signal } : {}),
    });
    return { jobId: answer.job_id };
  }

  async detachVolume(serverId: string, volumeId: string, signal?: AbortSignal): Promise<{ jobId: string }> {
    const answer = await this.#client.call<{ job_id: string }>({
      service: 'ecs',
      operation: 'DetachServerVolume',
      method: 'DELETE',
      path: `/v1/{project_id}/cloudservers/${encodeURIComponent(serverId)}/detachvolume/${encodeURIComponent(volumeId)}`,
      ...(signal ? { signal } : {}),
    });
    return { jobId: answer.job_id };
  }

  /** Polls an ECS or EVS job until SUCCESS (returned) or FAIL (thrown), with a growing wait. */
  async waitJob(service: 'ecs' | 'evs', jobId: string, what: string, signal?: AbortSignal): Promise<Job> {
    return this.poll(
      what,
      async () => {
        const job = await this.#client.call<Job>({
          service,
          operation: 'ShowJob',
          method: 'GET',
          path: `/v1/{project_id}/jobs/${encodeURIComponent(jobId)}`,
          ...(signal ? { signal } : {}),
        });
        if (job.status === 'FAIL') {
          throw new SyncproxyError(
            `${what} failed: job ${jobId} ${job.error_code ?? ''} ${job.fail_reason ?? ''}`.trim(),
            { code: 'platform', retryable: false, details: { jobId } },
          );
        }
        return job.status === 'SUCCESS' ? job : undefined;
      },
      signal,
    );
  }

  /** Calls `check` until it returns a value, waiting longer each time, up to the timeout. */
  async poll<T>(what: string, check: () => Promise<T | undefined>, signal?: AbortSignal): Promise<T> {
    const started = this.#clock.now();
    let delay = this.#poll.initialDelayMs;
    while (true) {
      const done = await check();
      if (done !== undefined) return done;
      const elapsed = this.#clock.now() - started;
      if (elapsed >= this.#poll.timeoutMs) {
        throw new SyncproxyError(`${what}: not done after ${Math.round(elapsed / 1000)} s`, {
          code: 'timeout',
          retryable: true,
        });
      }
      await sleep(this.#clock, Math.min(delay, this.#poll.timeoutMs - elapsed), signal, what);
      delay = Math.min(this.#poll.maxDelayMs, Math.max(1, Math.round(delay * 1.5)));
    }
  }
}
