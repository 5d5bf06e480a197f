import { type Extent, SyncproxyError } from '@syncproxy/core';
import { appendBitmapExtents, type BitmapEncoding, decodeBitmap } from './cbt-bitmap.js';
import { type FusionComputeClient, protocolError } from './client.js';

const SECTOR_BYTES = 512;

export interface ChangedBlocksInput {
  volumeUri: string;
  snapUuid: string;
  volCBTCreateTime?: string;
  /** The base's chgID for an incremental; absent for a full read (every block written since CBT began). */
  chgID?: string;
  diskSize: number;
  /**
   * Check that the volume ends where `diskSize` says: pages are asked until
   * one comes back short (getcbt answers only the blocks the volume has), and
   * a volume longer or shorter than `diskSize` is an `integrity` error. Only
   * for a test-only GB size (`gbBytes`), whose mistake would cut an image.
   */
  checkVolumeEnd?: boolean;
  /** Blocks per getcbt call: a multiple of 8, as getcbt requires when both bounds are given. */
  pageBlocks: number;
  encoding: BitmapEncoding;
  signal?: AbortSignal;
}

/** The changed (or, without `chgID`, allocated) blocks of a volume snapshot as sorted, coalesced extents. */
export async function listChangedExtents(
  client: FusionComputeClient,
  input: ChangedBlocksInput,
): Promise<{ extents: Extent[]; blockSizeBytes: number }> {
  const extents: Extent[] = [];
  let blockSizeBytes = 0;
  for (let startBlock = 0; ; startBlock += input.pageBlocks) {
    if (!input.checkVolumeEnd && blockSizeBytes > 0 && startBlock * blockSizeBytes >= input.diskSize) break;
    const page = await client.getCbt(
      input.volumeUri,
      {
        snapUuid: input.snapUuid,
        ...(input.volCBTCreateTime ? { volCBTCreateTime: input.volCBTCreateTime } : {}),
        ...(input.chgID ? { chgID: input.chgID } : {}),
        startBlock,
        blockNum: input.pageBlocks,
      },
      input.signal,
    );
    const size = page.sectorOfBlock * SECTOR_BYTES;
    if (size < SECTOR_BYTES) throw protocolError(`getcbt answered sectorOfBlock ${page.sectorOfBlock}`);
    if (blockSizeBytes !== 0 && size !== blockSizeBytes)
      throw protocolError(`getcbt changed its block size from ${blockSizeBytes} to ${size} bytes mid-volume`);
    blockSizeBytes = size;
    if (page.bitNum > input.pageBlocks)
      throw protocolError(`getcbt answered ${page.bitNum} blocks for a page of ${input.pageBlocks}`);
    const bits = decodeBitmap(page.bitMap, page.bitNum, input.encoding);
    appendBitmapExtents(extents, bits, {
      startBlock,
      bitNum: page.bitNum,
      blockSizeBytes,
      diskSize: input.diskSize,
    });
    const volumeEnd = (startBlock + page.bitNum) * blockSizeBytes;
    const short = page.bitNum < input.pageBlocks;
    if (
      input.checkVolumeEnd &&
      (volumeEnd >= input.diskSize + blockSizeBytes || (short && volumeEnd < input.diskSize))
    ) {
      throw new SyncproxyError(
        `volume ${input.volumeUri}: getcbt lists ${short ? '' : 'at least '}${volumeEnd} bytes of blocks, its size says ${input.diskSize}`,
        {
          code: 'integrity',
          retryable: false,
          details: { volumeUri: input.volumeUri, diskSize: input.diskSize },
        },
      );
    }
    // Fewer blocks than asked: the page passed the end of the volume.
    if (short) break;
  }
  return { extents, blockSizeBytes };
}
