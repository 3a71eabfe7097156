// alloc.ts (builtin): the safe allocator through the FFI against the same model as fuzz/alloc.c, decoding the
// same inputs. Bun gives the engine one thread, so the operations another thread does in the C target
// (free_other, malloc_other, check_all_other) run on this thread here.
import { ptr, toArrayBuffer } from "bun:ffi";
import { native, type Pointer } from "../../../native/ffi.ts";
import { ERROR_KINDS, memory, type ErrorKind } from "../../../native/memory.ts";
import { Encoder, fuzzAssert, FuzzFailure, Producer } from "../producer.ts";
import type { BuiltinTarget, Program } from "./types.ts";

const MAX_RECORDS = 64; // keeps every operation's reports inside the 256-event ring read back below
const MAX_OPS = 400;
const HEADER_BYTES = 24;
const HEADER_CHECKED = 16;
const HUGE_POISON_MAX = 64 << 10;
const POISON = 0xdf;
const GUARD = [0xef, 0xbe, 0xad, 0xde];
const BIG_QUARANTINE = "1g";

const OP = {
  malloc: 0, calloc: 1, aligned_alloc: 2, free: 3, realloc: 4, write: 5, corrupt_front: 6, corrupt_back: 7,
  uaf_write: 8, bad_free: 9, bad_realloc: 10, check_all: 11, usable_size: 12, stats: 13, live_blocks: 14,
  free_other: 15, malloc_other: 16, check_all_other: 17, absurd: 18,
} as const;
type OpName = keyof typeof OP;
const NAMES = Object.keys(OP) as OpName[];
// fuzz/alloc.c's OP_TABLE: the opcode byte picks one of 32 entries.
const TABLE: OpName[] = [
  "malloc", "malloc", "malloc", "malloc", "calloc", "aligned_alloc", "aligned_alloc", "free",
  "free", "free", "realloc", "realloc", "write", "write", "corrupt_front", "corrupt_front",
  "corrupt_back", "corrupt_back", "uaf_write", "uaf_write", "bad_free", "bad_free", "bad_realloc", "check_all",
  "usable_size", "stats", "live_blocks", "free_other", "malloc_other", "check_all_other", "absurd", "free",
];

export interface AllocOp {
  name: OpName;
  /** the opcode byte as read (any byte that maps to this name) */
  code: number;
  a: bigint;
  b: bigint;
  c: bigint;
  d: bigint;
  /** pick_size's mode byte for the size argument(s), kept so re-encoding gives the same size */
  modes: number[];
}

// pick_size: a mode byte, then a value in the mode's range.
const SIZE_MODES: [number, number][] = [
  [1, 16], [1, 16], [1, 16], [1, 128], [1, 128], [1, 128], [1, 128], [1, 1024], [1, 1024], [1, 1024],
  [1, 8192], [1, 8192], [8192, 70000], [240000, 300000], [300000, 600000],
];
function pickSize(p: Producer, modes: number[]): bigint {
  const mode = p.u8();
  modes.push(mode);
  const r = SIZE_MODES[mode % 16];
  return r ? p.range64(BigInt(r[0]), BigInt(r[1])) : 0n;
}
function putSize(e: Encoder, mode: number, size: bigint): void {
  e.u8(mode);
  const r = SIZE_MODES[mode % 16];
  if (r) e.range64(BigInt(r[0]), BigInt(r[1]), size);
}

function decodeOp(p: Producer): AllocOp {
  const code = p.u8();
  const o: AllocOp = { name: TABLE[code % 32]!, code, a: 0n, b: 0n, c: 0n, d: 0n, modes: [] };
  switch (o.name) {
    case "malloc": case "malloc_other": o.a = pickSize(p, o.modes); break;
    case "calloc":
      o.c = BigInt(p.u8() % 8);
      if (o.c === 7n) {
        o.a = p.u64();
        o.b = p.u64();
      } else {
        o.a = p.range64(0n, 64n);
        o.b = pickSize(p, o.modes);
      }
      break;
    case "aligned_alloc": o.a = BigInt(p.u8() % 20); o.b = pickSize(p, o.modes); break;
    case "free": case "free_other": o.a = BigInt(p.u8()); break;
    case "realloc": o.a = BigInt(p.u8()); o.b = pickSize(p, o.modes); break;
    case "write": o.a = BigInt(p.u8()); o.b = BigInt(p.u32()); o.c = BigInt(p.u16()); o.d = BigInt(p.u8()); break;
    case "corrupt_front": case "corrupt_back": o.a = BigInt(p.u8()); o.b = BigInt(p.u16()); o.c = BigInt(p.u8()); break;
    case "uaf_write": o.a = BigInt(p.u8()); o.b = BigInt(p.u32()); o.c = BigInt(p.u8()); break;
    case "bad_free": case "bad_realloc": o.a = BigInt(p.u8()); o.b = BigInt(p.u8() % 6); o.c = BigInt(p.u32()); break;
    case "usable_size": o.a = BigInt(p.u8()); o.b = BigInt(p.u32()); break;
    case "absurd": o.a = BigInt(p.u8() % 5); o.b = BigInt(p.u8()); break;
    default: break;
  }
  return o;
}

function encodeOp(e: Encoder, o: AllocOp): void {
  e.u8(o.code);
  switch (o.name) {
    case "malloc": case "malloc_other": putSize(e, o.modes[0]!, o.a); break;
    case "calloc":
      e.u8(Number(o.c));
      if (o.c === 7n) e.u64(o.a).u64(o.b);
      else {
        e.range64(0n, 64n, o.a);
        putSize(e, o.modes[0]!, o.b);
      }
      break;
    case "aligned_alloc": e.u8(Number(o.a)); putSize(e, o.modes[0]!, o.b); break;
    case "free": case "free_other": e.u8(Number(o.a)); break;
    case "realloc": e.u8(Number(o.a)); putSize(e, o.modes[0]!, o.b); break;
    case "write": e.u8(Number(o.a)).u32(Number(o.b)).u16(Number(o.c)).u8(Number(o.d)); break;
    case "corrupt_front": case "corrupt_back": e.u8(Number(o.a)).u16(Number(o.b)).u8(Number(o.c)); break;
    case "uaf_write": e.u8(Number(o.a)).u32(Number(o.b)).u8(Number(o.c)); break;
    case "bad_free": case "bad_realloc": e.u8(Number(o.a)).u8(Number(o.b)).u32(Number(o.c)); break;
    case "usable_size": e.u8(Number(o.a)).u32(Number(o.b)); break;
    case "absurd": e.u8(Number(o.a)).u8(Number(o.b)); break;
    default: break;
  }
}

// ------------------------------------------------------------------------------------------- the model ---
interface Rec {
  p: number;
  size: number;
  live: boolean;
  content: Uint8Array | null;
  header: Uint8Array;
}
interface Expect {
  kinds: ErrorKind[];
  address: number;
  size?: number;
  detail?: number;
}

let frontGuard = 8;
let backGuard = 8;
const spanBefore = () => frontGuard + HEADER_BYTES;
const bytesAt = (p: number, len: number) => new Uint8Array(toArrayBuffer(p as Pointer, 0, len));

function firstBadGuard(at: number, n: number): number {
  const g = bytesAt(at, n);
  for (let i = 0; i < n; i++) if (g[i] !== GUARD[i % 4]) return i;
  return -1;
}
const poisonSpan = (r: Rec) => Math.min(r.size, HUGE_POISON_MAX);
function firstUnpoisoned(r: Rec): number {
  const b = bytesAt(r.p, poisonSpan(r));
  for (let i = 0; i < b.length; i++) if (b[i] !== POISON) return i;
  return -1;
}

class Run {
  recs: Rec[] = [];
  expected: Expect[] = [];
  seq = 0;
  serial = 0;
  byKind: Record<string, number> = {};
  base = memory.stats();
  constructor(readonly log?: (line: string) => void) {
    this.seq = memory.lastErrorSeq();
  }

  expect(kinds: ErrorKind[], address: number, size?: number, detail?: number): void {
    this.expected.push({ kinds, address, size, detail });
  }

  match(what: string): void {
    const events = memory.errors(this.seq, 256);
    if (events.length) this.seq = events[events.length - 1]!.seq;
    const used = new Array(events.length).fill(false);
    for (const e of this.expected) {
      const j = events.findIndex((ev, k) => !used[k] && ev.address === e.address && e.kinds.includes(ev.kind));
      fuzzAssert(j >= 0, () => `${what}: expected ${e.kinds.join(" or ")} at 0x${e.address.toString(16)} (size ${e.size ?? "any"}), not reported (${events.length} events)`);
      const ev = events[j]!;
      fuzzAssert(e.size === undefined || ev.size === e.size, () => `${what}: ${ev.kind} at 0x${ev.address.toString(16)} reported size ${ev.size}, expected ${e.size}`);
      fuzzAssert(e.detail === undefined || ev.detail === e.detail, () => `${what}: ${ev.kind} at 0x${ev.address.toString(16)} reported detail ${ev.detail}, expected ${e.detail}`);
      used[j] = true;
    }
    events.forEach((ev, k) => fuzzAssert(used[k], () => `${what}: unexpected ${ev.kind} reported at 0x${ev.address.toString(16)} (size ${ev.size}, detail ${ev.detail})`));
    for (const ev of events) this.byKind[ev.kind] = (this.byKind[ev.kind] ?? 0) + 1;
    this.expected = [];
  }

  expectDamage(r: Rec): number {
    let bad = 0;
    const fbad = firstBadGuard(r.p - frontGuard, frontGuard);
    const hdr = bytesAt(r.p - spanBefore(), HEADER_CHECKED);
    const headerBad = hdr.some((b, i) => b !== r.header[i]);
    if (fbad >= 0 || headerBad) {
      this.expect(["buffer-underflow"], r.p, r.size, fbad >= 0 ? frontGuard - fbad : frontGuard + HEADER_BYTES);
      bad++;
    }
    const bbad = firstBadGuard(r.p + r.size, backGuard);
    if (bbad >= 0) {
      this.expect(["buffer-overflow"], r.p, r.size, r.size + bbad);
      bad++;
    }
    return bad;
  }

  checkContent(r: Rec, what: string): void {
    const b = bytesAt(r.p, r.size);
    for (let i = 0; i < r.size; i++) fuzzAssert(b[i] === r.content![i], () => `${what}: block 0x${r.p.toString(16)} byte ${i} is ${b[i]}, the program wrote ${r.content![i]}`);
  }

  checkFresh(p: number, size: number, align: number, what: string): void {
    fuzzAssert(p % align === 0, `${what}: 0x${p.toString(16)} is not aligned to ${align}`);
    fuzzAssert(memory.usableSize(p as Pointer) === size, `${what}: usable_size is not ${size}`);
    fuzzAssert(firstBadGuard(p - frontGuard, frontGuard) < 0 && firstBadGuard(p + size, backGuard) < 0, `${what}: the new block's guards are not 0xDEADBEEF`);
    for (const o of this.recs) {
      const apart = p + size + backGuard <= o.p - spanBefore() || o.p + o.size + backGuard <= p - spanBefore();
      fuzzAssert(apart, `${what}: new block 0x${p.toString(16)} overlaps block 0x${o.p.toString(16)}`);
    }
  }

  adopt(p: number, size: number, fill: boolean): Rec {
    const b = bytesAt(p, size);
    if (fill) b.fill((++this.serial * 37 + 11) & 0xff);
    const r: Rec = { p, size, live: true, content: b.slice(), header: bytesAt(p - spanBefore(), HEADER_BYTES).slice() };
    this.recs.push(r);
    return r;
  }

  quarantined(r: Rec, what: string): void {
    r.live = false;
    r.content = null;
    const bad = firstUnpoisoned(r);
    fuzzAssert(bad < 0, `${what}: freed block 0x${r.p.toString(16)} is not poisoned at byte ${bad}`);
  }

  freeRec(r: Rec, what: string): void {
    if (r.live) {
      this.checkContent(r, what);
      this.expectDamage(r);
    } else {
      this.expect(["double-free"], r.p, r.size, 0);
    }
    const was = r.live;
    memory.safeFree(r.p as Pointer);
    if (was) this.quarantined(r, what);
    fuzzAssert(memory.usableSize(r.p as Pointer) === 0, `${what}: usable_size of a freed block is not 0`);
  }

  alloc(size: number, align: number, alignedApi: boolean, what: string): void {
    if (this.recs.length >= MAX_RECORDS) return;
    const p = alignedApi ? memory.alignedAlloc(align, size) : memory.safeMalloc(size);
    this.log?.(`  -> ${p === null ? "NULL" : `0x${(p as number).toString(16)}`}`);
    if (size === 0) {
      fuzzAssert(p === null, `${what}(0) returned a block`);
      return;
    }
    fuzzAssert(p !== null, () => `${what}(${size}) failed: ${memory.lastError().message}`);
    this.checkFresh(p as number, size, Math.max(16, align), what);
    this.adopt(p as number, size, true);
  }

  pick(sel: bigint): Rec | undefined {
    return this.recs.length ? this.recs[Number(sel % BigInt(this.recs.length))] : undefined;
  }

  checkAll(what: string): void {
    let damaged = 0;
    for (const x of this.recs) {
      if (x.live) damaged += this.expectDamage(x) > 0 ? 1 : 0;
      else {
        const bad = firstUnpoisoned(x);
        if (bad >= 0) {
          this.expect(["use-after-free"], x.p, x.size, bad);
          damaged++;
        }
      }
    }
    const got = memory.checkAll();
    fuzzAssert(got === damaged, `${what}: check_all counted ${got} damaged blocks, the model ${damaged}`);
    for (const x of this.recs) if (!x.live) fuzzAssert(firstUnpoisoned(x) < 0, `${what}: 0x${x.p.toString(16)} not poisoned again after its report`);
  }

  stats(what: string): void {
    const s = memory.stats();
    const live = this.recs.filter((r) => r.live);
    fuzzAssert(s.liveCount === this.base.liveCount + live.length, `${what}: live_count ${s.liveCount - this.base.liveCount}, the model ${live.length}`);
    const bytes = live.reduce((a, r) => a + r.size, 0);
    fuzzAssert(s.liveBytes === this.base.liveBytes + bytes, `${what}: live_bytes ${s.liveBytes - this.base.liveBytes}, the model ${bytes}`);
    for (const k of ERROR_KINDS)
      fuzzAssert(s.errors[k] === this.base.errors[k] + (this.byKind[k] ?? 0), `${what}: ${k} count ${s.errors[k] - this.base.errors[k]}, the model ${this.byKind[k] ?? 0}`);
  }

  liveBlocks(what: string): void {
    const live = this.recs.filter((r) => r.live);
    const { total, blocks } = memory.liveBlocks(MAX_RECORDS + 8);
    fuzzAssert(total === this.base.liveCount + live.length, `${what}: ${total} live blocks listed, the model has ${live.length}`);
    if (this.base.liveCount !== 0) return;
    for (let i = 1; i < blocks.length; i++) fuzzAssert(blocks[i - 1]!.size >= blocks[i]!.size, `${what}: live blocks not listed largest first`);
    for (const r of live) fuzzAssert(blocks.some((b) => b.address === r.p && b.size === r.size), `${what}: live block 0x${r.p.toString(16)} missing from the list`);
  }
}

function runOp(run: Run, o: AllocOp, index: number): void {
  const what = `op ${index} (${o.name})`;
  const log = run.log;
  log?.(`op ${index}: ${o.name}`);
  log?.(`  ${describe(o)}`);
  let r: Rec | undefined;
  switch (o.name) {
    case "malloc": case "malloc_other": run.alloc(Number(o.a), 16, false, what); break;
    case "calloc": {
      if (run.recs.length >= MAX_RECORDS) break;
      const total = o.a * o.b;
      const overflow = total >= 1n << 64n;
      if (!overflow && total > 600000n) break;
      native().aether_clear_error();
      if (overflow) {
        // Numbers past 2^53 lose bits through the FFI, so the overflowing product is asked with exact BigInts.
        const q = native().aether_safe_calloc(o.a, o.b);
        fuzzAssert(q === null && memory.lastError().code === "AETHER_ERR_SIZE_OVERFLOW", `${what}: an overflowing calloc returned a block`);
        break;
      }
      const p = memory.safeCalloc(Number(o.a), Number(o.b));
      if (total === 0n) {
        fuzzAssert(p === null, `${what}: calloc of 0 bytes returned a block`);
        break;
      }
      fuzzAssert(p !== null, `${what}: calloc failed`);
      const n = Number(total);
      fuzzAssert(bytesAt(p as number, n).every((b) => b === 0), `${what}: calloc'd memory is not zero`);
      run.checkFresh(p as number, n, 16, what);
      run.adopt(p as number, n, false);
      break;
    }
    case "aligned_alloc": {
      const a = Number(o.a);
      const align = a <= 16 ? 2 ** a : 3 * 2 ** (a - 17);
      if (a > 16) {
        const p = memory.alignedAlloc(align, Number(o.b));
        fuzzAssert(p === null && memory.lastError().code === "AETHER_ERR_NOT_POWER_OF_TWO", `${what}: alignment ${align} was accepted`);
        break;
      }
      run.alloc(Number(o.b), align, true, what);
      break;
    }
    case "free": case "free_other":
      if ((r = run.pick(o.a))) run.freeRec(r, what);
      break;
    case "realloc": {
      if (!(r = run.pick(o.a))) break;
      const n = Number(o.b);
      if (n === 0) {
        run.freeRec(r, what);
        break;
      }
      if (!r.live) {
        run.expect(["invalid-realloc"], r.p, r.size, 0);
        const q = memory.safeRealloc(r.p as Pointer, n);
        fuzzAssert(q === null && memory.lastError().code === "AETHER_ERR_INVALID_POINTER", `${what}: realloc of a freed block returned a block`);
        break;
      }
      if (run.recs.length >= MAX_RECORDS) break;
      run.checkContent(r, what);
      run.expectDamage(r);
      const q = memory.safeRealloc(r.p as Pointer, n) as number | null;
      log?.(`  -> ${q === null ? "NULL" : `0x${q.toString(16)}`}`);
      fuzzAssert(q !== null, `${what}: realloc to ${n} failed`);
      const keep = Math.min(r.size, n);
      const now = bytesAt(q, n);
      for (let i = 0; i < keep; i++) fuzzAssert(now[i] === r.content![i], `${what}: realloc lost the block's contents at byte ${i}`);
      now.fill(0x5a, keep);
      if (q !== r.p) {
        run.quarantined(r, what);
        run.checkFresh(q, n, 16, what);
        run.adopt(q, n, false);
      } else {
        fuzzAssert(memory.usableSize(q as Pointer) === n, `${what}: usable_size after realloc in place is not ${n}`);
        r.size = n;
        r.content = now.slice();
        r.header = bytesAt(q - spanBefore(), HEADER_BYTES).slice();
      }
      break;
    }
    case "write": {
      if (!(r = run.pick(o.a)) || !r.live) break;
      const off = Number(o.b % BigInt(r.size));
      const len = Number(o.c % BigInt(r.size - off)) + 1;
      bytesAt(r.p + off, len).fill(Number(o.d));
      r.content!.fill(Number(o.d), off, off + len);
      break;
    }
    case "corrupt_front": case "corrupt_back": {
      if (!(r = run.pick(o.a))) break;
      const x = Number(o.c) || 1;
      const at = o.name === "corrupt_front" ? r.p - 1 - Number(o.b % BigInt(spanBefore())) : r.p + r.size + Number(o.b % BigInt(backGuard));
      const b = bytesAt(at, 1);
      b[0] = b[0]! ^ x;
      break;
    }
    case "uaf_write": {
      if (!(r = run.pick(o.a)) || r.live) break;
      const b = bytesAt(r.p + Number(o.b % BigInt(poisonSpan(r))), 1);
      b[0] = b[0]! ^ (Number(o.c) || 1);
      break;
    }
    case "bad_free": case "bad_realloc": {
      if (!(r = run.pick(o.a))) break;
      const kind = Number(o.b);
      const v = Number(o.c);
      let q: number | null = null;
      let wild = false;
      let libc: Pointer | null = null;
      const stack = new Uint8Array(16); // JS memory: not the allocator's, like a C stack array
      switch (kind) {
        case 0: q = r.size >= 2 ? r.p + 1 + (v % (r.size - 1)) : null; break;
        case 1: q = r.p - 1 - (v % spanBefore()); break;
        case 2: q = r.p + r.size + (v % backGuard); break;
        case 3: q = Number(ptr(stack)); break; // memory the allocator never handed out, like a C stack array
        case 4: libc = memory.malloc(32); q = libc as number; break;
        default: wild = true; q = r.p + (v | 0); break;
      }
      if (q === null || q === 0) break;
      const hit = wild ? run.recs.find((x) => x.p === q) : undefined;
      if (hit) {
        if (o.name === "bad_free") run.freeRec(hit, what);
        break;
      }
      if (o.name === "bad_free") {
        run.expect(wild ? ["invalid-free", "double-free"] : ["invalid-free"], q, wild ? undefined : 0);
        memory.safeFree(q as Pointer);
      } else {
        run.expect(["invalid-realloc"], q, wild ? undefined : 0, 0);
        const res = memory.safeRealloc(q as Pointer, 64);
        fuzzAssert(res === null && memory.lastError().code === "AETHER_ERR_INVALID_POINTER", `${what}: realloc of a bad pointer returned a block`);
      }
      if (libc) memory.free(libc);
      break;
    }
    case "check_all": case "check_all_other": run.checkAll(what); break;
    case "usable_size": {
      if (!(r = run.pick(o.a))) break;
      const delta = Number(o.b % BigInt(r.size));
      const want = delta === 0 && r.live ? r.size : 0;
      const got = memory.usableSize((r.p + delta) as Pointer);
      fuzzAssert(got === want, `${what}: usable_size(+${delta}) = ${got}, expected ${want}`);
      break;
    }
    case "absurd": {
      const b = o.b;
      let res: unknown = null;
      const n = native();
      switch (Number(o.a)) {
        case 0: res = n.aether_safe_malloc((1n << 47n) + b); break;
        case 1: res = n.aether_safe_malloc(0xffffffffffffffffn - b); break;
        case 2: res = n.aether_safe_aligned_alloc(1n << 31n, 64); break;
        case 3: res = n.aether_safe_calloc((1n << 33n) + b, 1n << 33n); break;
        default:
          if (!(r = run.pick(b)) || !r.live) break;
          run.checkContent(r, what);
          run.expectDamage(r);
          res = n.aether_safe_realloc(r.p as Pointer, (1n << 50n) + b);
          fuzzAssert(memory.usableSize(r.p as Pointer) === r.size, `${what}: a failed realloc changed the block`);
          run.checkContent(r, what);
          break;
      }
      fuzzAssert(res === null, `${what}: an impossible request returned a block`);
      break;
    }
    default: break;
  }
  run.match(what);
  if (o.name === "stats") run.stats(what);
  if (o.name === "live_blocks") run.liveBlocks(what);
}

export function describe(o: AllocOp): string {
  const sizeArgs = (v: bigint) => `size=${v}`;
  switch (o.name) {
    case "malloc": case "malloc_other": return `${o.name} ${sizeArgs(o.a)}`;
    case "calloc": return `calloc count=${o.a} size=${o.b}`;
    case "aligned_alloc": return `aligned_alloc align=${o.a <= 16n ? 2 ** Number(o.a) : 3 * 2 ** (Number(o.a) - 17)} size=${o.b}`;
    case "realloc": return `realloc block#${o.a} to ${o.b}`;
    case "free": case "free_other": return `${o.name} block#${o.a}`;
    case "write": return `write block#${o.a} at ${o.b} len ${o.c} = ${o.d}`;
    case "corrupt_front": case "corrupt_back": return `${o.name} block#${o.a} byte ${o.b} ^= ${o.c || 1n}`;
    case "uaf_write": return `uaf_write block#${o.a} at ${o.b} ^= ${o.c || 1n}`;
    case "bad_free": case "bad_realloc": return `${o.name} kind ${o.b} near block#${o.a} (${o.c})`;
    case "usable_size": return `usable_size block#${o.a} +${o.b}`;
    case "absurd": return `absurd kind ${o.a}`;
    default: return o.name;
  }
}

function setup(): void {
  memory.init();
  memory.setOption("quiet", true);
  memory.setOption("abort_on_error", false);
  memory.setOption("quarantine_bytes", BIG_QUARANTINE);
  backGuard = (Number(memory.getOption("redzone")) + 7) & ~7;
  frontGuard = backGuard + ((HEADER_BYTES + backGuard) % 16 ? 8 : 0);
}
let ready = false;

export const allocTarget: BuiltinTarget<AllocOp> = {
  name: "alloc",
  description: "the safe allocator through the FFI: alloc/free/realloc/corrupt/invalid-free programs against fuzz/alloc.c's model",
  maxLen: 1024,
  decode(data) {
    const p = new Producer(data);
    const ops: AllocOp[] = [];
    while (!p.empty && ops.length < MAX_OPS) ops.push(decodeOp(p));
    return { head: new Uint8Array(0), ops };
  },
  encode(prog) {
    const e = new Encoder();
    for (const o of prog.ops) encodeOp(e, o);
    return e.finish();
  },
  simplify(o) {
    const out: AllocOp[] = [];
    if (o.modes.length && o.modes[0]! % 16 > 2 && o.modes[0]! % 16 < 15) out.push({ ...o, modes: [0], a: o.name === "calloc" ? o.a : 1n, b: o.name === "calloc" ? 1n : o.b });
    for (const f of ["a", "b", "c", "d"] as const) if (o[f] > 0n && !(o.name === "calloc" && o.c === 7n)) out.push({ ...o, [f]: o[f] / 2n });
    return out;
  },
  describe,
  run(prog, log) {
    if (!ready) {
      setup();
      ready = true;
    }
    const run = new Run(log);
    try {
      prog.ops.forEach((o, i) => runOp(run, o, i));
      run.stats("end of program");
      run.liveBlocks("end of program");
    } catch (e) {
      // Leave the allocator as a fresh program expects it (nothing live, quarantine empty), unchecked.
      for (const r of run.recs) if (r.live) memory.safeFree(r.p as Pointer);
      memory.setOption("quarantine_bytes", 0);
      memory.safeFree(memory.safeMalloc(1));
      memory.setOption("quarantine_bytes", BIG_QUARANTINE);
      throw e;
    }
    // Free what is live (damage is reported as usual), then drain the quarantine (a write after free is
    // reported as each block leaves), so the next program starts from nothing.
    log?.("cleanup: free every live block, drain the quarantine");
    for (const r of run.recs) if (r.live) run.freeRec(r, "cleanup");
    run.match("cleanup: free");
    memory.setOption("quarantine_bytes", 0);
    for (const r of run.recs) {
      const bad = firstUnpoisoned(r);
      if (bad >= 0) run.expect(["use-after-free"], r.p, r.size, bad);
    }
    memory.safeFree(memory.safeMalloc(1));
    memory.setOption("quarantine_bytes", BIG_QUARANTINE);
    run.match("cleanup: drain the quarantine");
    run.stats("after cleanup");
    log?.("done: no finding");
  },
};

export { FuzzFailure, NAMES as ALLOC_OP_NAMES };
