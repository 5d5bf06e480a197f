/**
 * Alignment of the memory, offset and length a write must have to bypass the page cache
 * (`O_DIRECT`): 4 KiB covers devices with 512-byte and 4 KiB logical blocks alike.
 */
export const DIRECT_IO_ALIGNMENT = 4096;

/** Shared memories whose first byte sits on a page boundary (see {@link ChunkBufferPool}). */
const pageAligned = new WeakSet<ArrayBufferLike>();

/** 64 KiB: the unit WebAssembly memories are sized in. */
const WASM_PAGE_BYTES = 64 * 1024;
/** A WebAssembly memory holds at most 4 GiB (65536 pages). */
const WASM_MAX_PAGES = 65536;

/** WebAssembly.Memory, typed here: the project's lib has no DOM types, and @types/node no such value. */
const WasmMemory = (
  globalThis as {
    WebAssembly?: {
      Memory?: new (descriptor: { initial: number; maximum: number; shared: boolean }) => { buffer: unknown };
    };
  }
).WebAssembly?.Memory;

/**
 * True when `data` may be written with `O_DIRECT` as far as memory goes: it lies on a page-aligned
 * buffer (one of {@link ChunkBufferPool}'s) at a multiple of {@link DIRECT_IO_ALIGNMENT}. Node gives
 * no other way to know a buffer's address: an ordinary (Shared)ArrayBuffer comes from malloc, 16-byte
 * aligned, and the kernel refuses it (EINVAL) on most file systems.
 */
export function isDirectIoAligned(data: Uint8Array): boolean {
  return pageAligned.has(data.buffer) && data.byteOffset % DIRECT_IO_ALIGNMENT === 0;
}

/**
 * Chunk buffers on shared memory, reused from one chunk to the next: no
 * allocation (page faults, GC of external memory) per read, and a hashing
 * worker or a read thread can use them without a copy. Only full-size chunks
 * are pooled; at most `maxPooled` are kept, so the pool never holds more than
 * the engine's in-flight bound.
 *
 * Pooled buffers are slots of one shared WebAssembly memory, made on first
 * use: its pages are only reserved until touched, it starts on a page
 * boundary, and each slot starts on a 4 KiB boundary, so a sink can write them
 * past the page cache ({@link isDirectIoAligned}). Where no such memory can be
 * had (a `ulimit -v` too small for its reservation, say), and for chunks of
 * other sizes, buffers are plain SharedArrayBuffers.
 */
export class ChunkBufferPool {
  private readonly free: Uint8Array[] = [];
  private readonly slotBytes: number;
  /** The memory the slots are cut from: undefined until first used, null when it could not be had. */
  private slots: SharedArrayBuffer | null | undefined;
  private slotsHandedOut = 0;

  constructor(
    private readonly chunkSizeBytes: number,
    private readonly maxPooled: number,
  ) {
    this.slotBytes = Math.ceil(chunkSizeBytes / DIRECT_IO_ALIGNMENT) * DIRECT_IO_ALIGNMENT;
  }

  acquire(length: number): Uint8Array {
    if (length === this.chunkSizeBytes) {
      const reused = this.free.pop();
      if (reused !== undefined) return reused;
      const memory = this.slotMemory();
      if (memory !== null && this.slotsHandedOut < this.maxPooled) {
        const at = this.slotsHandedOut++ * this.slotBytes;
        return new Uint8Array(memory, at, length);
      }
    }
    return new Uint8Array(new SharedArrayBuffer(length));
  }

  /** Gives a buffer back once nothing reads or writes it any more. */
  release(buffer: Uint8Array): void {
    if (buffer.byteLength === this.chunkSizeBytes && this.free.length < this.maxPooled)
      this.free.push(buffer);
  }

  private slotMemory(): SharedArrayBuffer | null {
    if (this.slots !== undefined) return this.slots;
    const pages = Math.ceil((this.slotBytes * this.maxPooled) / WASM_PAGE_BYTES);
    this.slots = null;
    if (pages < 1 || pages > WASM_MAX_PAGES || WasmMemory === undefined) return null;
    try {
      const { buffer } = new WasmMemory({ initial: pages, maximum: pages, shared: true });
      if (buffer instanceof SharedArrayBuffer) {
        pageAligned.add(buffer);
        this.slots = buffer;
      }
    } catch {
      // RangeError: the address space for its reservation was refused. Plain buffers serve as well.
    }
    return this.slots;
  }
}
