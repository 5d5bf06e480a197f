export interface SinkWriteOptions {
  signal?: AbortSignal;
}

/** Where the transfer engine writes a disk: a raw image file, a block device, an NBD export. Spec v1. */
export interface BlockSink {
  /** The target's size in bytes, when it is fixed (block devices, NBD exports). */
  readonly size?: number;
  /**
   * Optional: the path prefix of the sink's own state files (checkpoint,
   * manifest), e.g. the image path of a FileSink. Absent: the sink keeps none.
   */
  readonly statePath?: string;
  /**
   * Optional, known once `open` has resolved: a name for the very target written to, which
   * changes when the target is replaced or made anew (a FileSink: the file's device, inode and
   * birth time). The engine resumes a checkpoint, and continues a manifest, only on the target
   * they were saved for: an image deleted and made again, or swapped for another file, starts
   * over instead of keeping chunks it no longer holds.
   */
  readonly targetId?: string;
  /** Called once before the first write with the source disk's size. */
  open?(diskSize: number): Promise<void>;
  write(offset: number, data: Uint8Array, options?: SinkWriteOptions): Promise<void>;
  /** Makes `[offset, offset + length)` read as zeroes, leaving a hole where the target can. */
  writeZeroes(offset: number, length: number, options?: SinkWriteOptions): Promise<void>;
  /** Reads back what was written (for verification); optional. */
  read?(offset: number, length: number, options?: SinkWriteOptions): Promise<Uint8Array>;
  /**
   * Optional, beside `read`: reads `target.length` bytes at `offset` into `target`. The engine reads
   * the target through it where a sink offers it: into its shared chunk buffers, which its hashing
   * threads take without a copy. A wrapper of a sink forwards it with `read`.
   */
  readInto?(offset: number, target: Uint8Array, options?: SinkWriteOptions): Promise<void>;
  /**
   * Optional, beside `read`: whether `[offset, offset + length)` of the target reads as zeroes, found
   * by reading it, where the sink can do that for less than a read into memory (a FileSink reads past
   * the page cache: a sparse image's hole then makes no page of cache). The engine asks it first of
   * the bytes an incremental keeps around its changes in a chunk its manifest says is zero. A wrapper
   * of a sink forwards it with `read`.
   */
  readsAsZeroes?(offset: number, length: number, options?: SinkWriteOptions): Promise<boolean>;
  /** Makes everything written so far durable. */
  flush(): Promise<void>;
  close(): Promise<void>;
}
