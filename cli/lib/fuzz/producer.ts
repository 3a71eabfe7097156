// producer.ts: the Bun side of fuzz/fuzz_helpers.h's data producer. An input is decoded here exactly as the C
// targets decode it (values read from the front, little-endian, in the fewest bytes that hold their range,
// zeros past the end), and a program can be encoded back into those bytes, so the builtin engine's inputs,
// the committed corpora and libFuzzer's findings are one format, and a shrunk program is a file any engine
// replays.

/** Bytes needed to hold span (the largest offset from the minimum): 1, 2, 4 or 8. */
export function width(span: bigint): number {
  return span <= 0xffn ? 1 : span <= 0xffffn ? 2 : span <= 0xffffffffn ? 4 : 8;
}

export class Producer {
  pos = 0;
  constructor(readonly data: Uint8Array) {}

  get empty(): boolean {
    return this.pos >= this.data.length;
  }
  get remaining(): number {
    return Math.max(0, this.data.length - this.pos);
  }

  bytesLE(n: number): bigint {
    let v = 0n;
    for (let i = 0; i < n; i++) {
      const b = this.pos < this.data.length ? this.data[this.pos++]! : 0;
      v |= BigInt(b) << BigInt(8 * i);
    }
    return v;
  }

  /** A value in [min, max] (fuzz_range64). */
  range64(min: bigint, max: bigint): bigint {
    if (max <= min) return min;
    const span = max - min;
    const raw = this.bytesLE(width(span));
    return span === 0xffffffffffffffffn ? raw : min + (raw % (span + 1n));
  }
  range(min: number, max: number): number {
    return Number(this.range64(BigInt(min), BigInt(max)));
  }
  u8(): number {
    return Number(this.bytesLE(1));
  }
  u16(): number {
    return Number(this.bytesLE(2));
  }
  u32(): number {
    return Number(this.bytesLE(4));
  }
  u64(): bigint {
    return this.bytesLE(8);
  }
  bool(): boolean {
    return (this.u8() & 1) === 1;
  }
  f32bits(): number {
    const b = new DataView(new ArrayBuffer(4));
    b.setUint32(0, this.u32(), true);
    return b.getFloat32(0, true);
  }
}

/** Builds an input byte by byte; each method is the inverse of the Producer method of the same name. */
export class Encoder {
  private bytes: number[] = [];

  bytesLE(v: bigint, n: number): this {
    for (let i = 0; i < n; i++) this.bytes.push(Number((v >> BigInt(8 * i)) & 0xffn));
    return this;
  }
  range64(min: bigint, max: bigint, value: bigint): this {
    if (max <= min) return this;
    const v = value < min || value > max ? min : value;
    return this.bytesLE(v - min, width(max - min));
  }
  range(min: number, max: number, value: number): this {
    return this.range64(BigInt(min), BigInt(max), BigInt(value));
  }
  u8(v: number): this {
    return this.bytesLE(BigInt(v & 0xff), 1);
  }
  u16(v: number): this {
    return this.bytesLE(BigInt(v & 0xffff), 2);
  }
  u32(v: number): this {
    return this.bytesLE(BigInt(v >>> 0), 4);
  }
  u64(v: bigint): this {
    return this.bytesLE(BigInt.asUintN(64, v), 8);
  }
  f32bits(f: number): this {
    const b = new DataView(new ArrayBuffer(4));
    b.setFloat32(0, f, true);
    return this.u32(b.getUint32(0, true));
  }
  raw(data: Uint8Array): this {
    for (const b of data) this.bytes.push(b);
    return this;
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** splitmix64, as fuzz_mix64: the seeded generator both sides use to fill large buffers. */
export function mix64(state: { s: bigint }): bigint {
  state.s = BigInt.asUintN(64, state.s + 0x9e3779b97f4a7c15n);
  let z = state.s;
  z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
  z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
  return z ^ (z >> 31n);
}

/** A failed check of a fuzz target's oracle (the C side's FUZZ_ASSERT). */
export class FuzzFailure extends Error {
  override name = "FuzzFailure";
}

export function fuzzAssert(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new FuzzFailure(typeof message === "string" ? message : message());
}
