/** Bytes per read into the scratch buffer: headers and small payloads. */
const SCRATCH_BYTES = 256 * 1024;
/** Payload left below this goes through the scratch buffer: a direct read this small saves little. */
const MIN_DIRECT_BYTES = 16 * 1024;
/** A structured reply header and the offset of an OFFSET_DATA chunk. */
const HEADER_AND_OFFSET_BYTES = 28;

/**
 * Chooses where the kernel puts each socket read (net's `onread`). While a
 * READ payload is expected, the next read goes straight into the caller's
 * destination, so the bytes are copied once, by the kernel, as nbdcopy does.
 * Otherwise it reads into one reused scratch buffer, and whoever handles the
 * chunk must copy what it keeps past the callback.
 */
export class SocketReceiver {
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private direct: Uint8Array | undefined;
  /** Handles bytes read into the scratch buffer; they are valid only during the call. */
  onChunk: (chunk: Buffer) => void = () => {};
  /** The destination for the next read, when the parser knows it; undefined for scratch. */
  target: () => Uint8Array | undefined = () => undefined;
  /**
   * True when a reply header is due and a large READ payload likely follows:
   * the next read then takes only a structured header and an offset, so that
   * the payload after it goes straight to its destination instead of through
   * the scratch buffer.
   */
  expectsLargeData: () => boolean = () => false;
  /** Called with the byte count after a read straight into the destination. */
  onDirect: (bytes: number) => void = () => {};

  /** The `onread` option of `net.connect`. */
  readonly onread = {
    buffer: (): Uint8Array => {
      const target = this.target();
      this.direct = target !== undefined && target.length >= MIN_DIRECT_BYTES ? target : undefined;
      if (this.direct) return this.direct;
      return this.expectsLargeData() ? this.scratch.subarray(0, HEADER_AND_OFFSET_BYTES) : this.scratch;
    },
    callback: (bytes: number, buffer: Uint8Array): boolean => {
      if (buffer === this.direct && this.direct !== undefined) this.onDirect(bytes);
      else this.onChunk(this.scratch.subarray(0, bytes));
      return true;
    },
  };
}
