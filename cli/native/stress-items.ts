// stress-items.ts: how Worker-mode stress encodes queue items and stamps blocks (pure JS, shared by the
// Workers and the thread that checks what they leave behind).
//
// A queue item's first min(elemSize, 6) bytes hold (producer id, sequence number) packed into one integer,
// the id in the high bits; the bytes after them hold a pattern derived from that integer, so a torn copy
// shows. A block's stamp is its owner's tag (a unique number per owner and ownership) in its first 8 bytes
// (as many as fit), then a pattern derived from the tag.

export function hash32(lo: number, hi: number): number {
  let h = Math.imul(lo ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(hi + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  return (h ^ (h >>> 15)) >>> 0;
}

export interface ItemLayout {
  elemSize: number;
  wordBytes: number; // min(elemSize, 6)
  idBits: number;
  seqBits: number;
  seqMod: number; // 2^seqBits
}

export function itemLayout(elemSize: number, producers: number): ItemLayout {
  const wordBytes = Math.min(elemSize, 6);
  const idBits = producers <= 1 ? 0 : Math.ceil(Math.log2(producers));
  const seqBits = 8 * wordBytes - idBits;
  if (seqBits < 1) throw new RangeError(`${producers} producers do not fit in ${elemSize}-byte items`);
  return { elemSize, wordBytes, idBits, seqBits, seqMod: 2 ** seqBits };
}

const TWO32 = 2 ** 32;

/** Write item (id, seq) at buf[off..off+elemSize). */
export function writeItem(L: ItemLayout, buf: Uint8Array, off: number, id: number, seq: number): void {
  const v = id * L.seqMod + (seq % L.seqMod);
  const lo = v % TWO32 >>> 0;
  const hi = Math.floor(v / TWO32);
  for (let b = 0; b < L.wordBytes; b++) buf[off + b] = b < 4 ? (lo >>> (8 * b)) & 255 : (hi >>> (8 * (b - 4))) & 255;
  if (L.elemSize > L.wordBytes) {
    const h = hash32(lo, hi);
    for (let k = L.wordBytes; k < L.elemSize; k++) buf[off + k] = ((h >>> ((k & 3) << 3)) ^ (k >>> 2)) & 255;
  }
}

/** Read an item: its id, sequence field, and the offset of its first damaged pattern byte (-1 if none). */
export function readItem(L: ItemLayout, buf: Uint8Array, off: number): { id: number; seq: number; damage: number; hash: number } {
  let lo = 0;
  let hi = 0;
  for (let b = 0; b < L.wordBytes; b++) {
    if (b < 4) lo |= buf[off + b]! << (8 * b);
    else hi |= buf[off + b]! << (8 * (b - 4));
  }
  lo >>>= 0;
  const v = hi * TWO32 + lo;
  const id = Math.floor(v / L.seqMod);
  const seq = v % L.seqMod;
  const h = hash32(lo, hi);
  let damage = -1;
  for (let k = L.wordBytes; k < L.elemSize; k++)
    if (buf[off + k] !== (((h >>> ((k & 3) << 3)) ^ (k >>> 2)) & 255)) {
      damage = k;
      break;
    }
  return { id, seq, damage, hash: h };
}

/** Stamp a block of size bytes with tag (a non-negative safe integer). */
export function stamp(view: Uint8Array, size: number, tag: number): void {
  const lo = tag % TWO32 >>> 0;
  const hi = Math.floor(tag / TWO32);
  for (let b = 0; b < Math.min(size, 8); b++) view[b] = b < 4 ? (lo >>> (8 * b)) & 255 : (hi >>> (8 * (b - 4))) & 255;
  const h = hash32(lo, hi);
  for (let k = 8; k < size; k++) view[k] = ((h >>> ((k & 3) << 3)) ^ (k >>> 2)) & 255;
}

/** The tag a block carries (only its first min(size, 8) bytes). */
export function readTag(view: Uint8Array, size: number): number {
  let lo = 0;
  let hi = 0;
  for (let b = 0; b < Math.min(size, 8); b++) {
    if (b < 4) lo |= view[b]! << (8 * b);
    else hi |= view[b]! << (8 * (b - 4));
  }
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}

/** The tag bytes as hex, exactly (a damaged tag may not fit a double). */
export function tagHex(view: Uint8Array, size: number): string {
  let s = "";
  for (let b = Math.min(size, 8) - 1; b >= 0; b--) s += view[b]!.toString(16).padStart(2, "0");
  return `0x${s.replace(/^0+(?=.)/, "")}`;
}

/** The first byte that differs from the stamp of tag, or -1. */
export function stampDamage(view: Uint8Array, size: number, tag: number): number {
  const lo = tag % TWO32 >>> 0;
  const hi = Math.floor(tag / TWO32);
  for (let b = 0; b < Math.min(size, 8); b++) {
    const want = b < 4 ? (lo >>> (8 * b)) & 255 : (hi >>> (8 * (b - 4))) & 255;
    if (view[b] !== want) return b;
  }
  const h = hash32(lo, hi);
  for (let k = 8; k < size; k++) if (view[k] !== (((h >>> ((k & 3) << 3)) ^ (k >>> 2)) & 255)) return k;
  return -1;
}
