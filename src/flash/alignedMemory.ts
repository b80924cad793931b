/*
 * O_DIRECT transfers need page-aligned memory, and Node's Buffers are not aligned (a 1 MiB Buffer.alloc
 * sits 16 bytes past a page boundary, and the kernel answers EINVAL). A WebAssembly.Memory is allocated on
 * a page boundary, so fixed slices of it are aligned as long as each slice starts at a multiple of 4096.
 * The memory is never grown: growing would detach every slice already handed out.
 */

const wasmPage = 64 * 1024
// Node has WebAssembly.Memory at run time; this project's TypeScript libs (no DOM) only declare its types.
const { Memory } = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer } }
  }
).WebAssembly
const alignment = 4096

export interface AlignedBuffers {
  /** `count` buffers of `size` bytes each, every one starting on a 4096-byte boundary. */
  readonly buffers: ReadonlyArray<Buffer>
  readonly size: number
}

export const alignedBuffers = (count: number, size: number): AlignedBuffers => {
  if (size % alignment !== 0) throw new RangeError(`buffer size ${size} is not a multiple of ${alignment}`)
  const memory = new Memory({ initial: Math.ceil((count * size) / wasmPage) })
  const buffers = Array.from({ length: count }, (_, i) => Buffer.from(memory.buffer, i * size, size))
  return { buffers, size }
}

/** `n` rounded up to a multiple of `block` (a device's logical block size). */
export const roundUp = (n: number, block: number): number => Math.ceil(n / block) * block
