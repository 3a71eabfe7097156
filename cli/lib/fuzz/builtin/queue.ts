// queue.ts (builtin): the lock-free SPSC and MPMC queues through the FFI against a model FIFO, decoding
// fuzz/queue.c's inputs and checking them the same way:
// - create refuses a capacity that is not a power of two in [8, 2^24] or an item size outside [1, 4096] with
//   the documented status, and never rounds;
// - every push succeeds exactly when the model has room, every pop exactly when it holds an item, and the
//   item popped is the model's oldest, byte for byte; batches move exactly min(n, room) / min(n, items), in
//   order; size, capacity, elem_size and the raw indices agree with the model (head - tail = size, across
//   the 2^32 and 2^64 wraps); the u64 paths refuse other item sizes with INVALID_ARGUMENT;
// - in a threaded burst (a producer thread, two for MPMC, pushing while this thread pops) nothing is lost,
//   duplicated or reordered per producer.
// The producers are Bun Workers (helper.ts), real threads like the C target's pthreads. Calls go through
// the typed wrapper (cli/native/queues.ts), except capacity/elem_size (the wrapper keeps what it was given
// instead of asking) and the u64 paths on queues whose items are not 8 bytes (the wrapper refuses those
// itself, before C could): those use the raw symbols, as the C target calls them.
import { AetherError, lastError, native, type Pointer } from "../../../native/ffi.ts";
import { Queue } from "../../../native/queues.ts";
import { Encoder, fuzzAssert, Producer } from "../producer.ts";
import { CMD, HelperThread } from "./helper.ts";
import type { BuiltinTarget } from "./types.ts";

const MAX_OPS = 256;
const MAX_ELEM = 4096;
const CAPS = [8, 16, 64, 256, 1024, 4096, 32, 128];
const ELEMS = [8, 1, 3, 16, 24, 64, 200, 4096];
const BAD_CAPS = [0, 4, 7, 9, 100, 2 ** 25];
const WRAPS = [(1n << 32n) - 5n, (1n << 64n) - 1n - 5n, (1n << 63n) - 3n, 12345n];
/** A burst whose producers are still pushing but that has received no item for this long is stuck (the C
 * target would hang until libFuzzer's timeout). Items lost outright are caught as soon as every producer is
 * done and the queue is empty. */
const BURST_STALL_MS = 20_000;

const OP_NAMES = ["try_push", "try_push", "try_pop", "try_pop", "push_n", "pop_n", "u64", "set_index", "burst", "nop"] as const;

export interface QueueOp {
  /** the opcode byte as read (code % 10 picks the operation) */
  code: number;
  /** the count byte (n % 64 for the batches, the wrap's pick, the burst's size) */
  n: number;
}

// ----------------------------------------------------------------------------------------- item bytes ---
// fuzz/queue.c's item_bytes: splitmix64 words from id * golden + elem, the id itself in the first 8 bytes.
// splitmix64 is done on 32-bit halves here, in module variables (a 4 KiB item is 512 mixes: BigInt, or a
// tuple per step, would dominate the run).
let stH = 0, stL = 0; // the generator's state
let mH = 0, mL = 0; // mul64's product, mix's result

/** (mH, mL) = (ah:al) * (bh:bl) mod 2^64 */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  mL = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  mH = (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** fuzz_mix64 on (stH:stL): advances the state, leaves the word in (mH, mL). */
function mix(): void {
  const lo = stL + 0x7f4a7c15;
  stL = lo >>> 0;
  stH = (stH + 0x9e3779b9 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  let h = stH, l = stL;
  // z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
  mul64((h ^ (h >>> 30)) >>> 0, (l ^ ((l >>> 30) | (h << 2))) >>> 0, 0xbf58476d, 0x1ce4e5b9);
  h = mH;
  l = mL;
  // z = (z ^ (z >> 27)) * 0x94D049BB133111EB
  mul64((h ^ (h >>> 27)) >>> 0, (l ^ ((l >>> 27) | (h << 5))) >>> 0, 0x94d049bb, 0x133111eb);
  h = mH;
  l = mL;
  // z ^ (z >> 31)
  mH = (h ^ (h >>> 31)) >>> 0;
  mL = (l ^ ((l >>> 31) | (h << 1))) >>> 0;
}

/** fuzz_mix64 of a 64-bit state, as a BigInt (for checking this against producer.ts's mix64). */
export function mix64Fast(state: { s: bigint }): bigint {
  stH = Number(state.s >> 32n);
  stL = Number(state.s & 0xffffffffn);
  mix();
  state.s = (BigInt(stH) << 32n) | BigInt(stL);
  return (BigInt(mH) << 32n) | BigInt(mL);
}

/** item_bytes(id) for items of elem bytes, into out at byte at. */
export function itemBytes(id: number, elem: number, out: Uint8Array, at = 0): void {
  const s = BigInt.asUintN(64, BigInt(id) * 0x9e3779b97f4a7c15n + BigInt(elem));
  stH = Number(s >> 32n);
  stL = Number(s & 0xffffffffn);
  for (let i = 0; i < elem; i += 8) {
    mix();
    const o = at + i;
    if (elem - i >= 8) {
      out[o] = mL;
      out[o + 1] = mL >>> 8;
      out[o + 2] = mL >>> 16;
      out[o + 3] = mL >>> 24;
      out[o + 4] = mH;
      out[o + 5] = mH >>> 8;
      out[o + 6] = mH >>> 16;
      out[o + 7] = mH >>> 24;
    } else {
      for (let k = 0; k < elem - i; k++) out[o + k] = k < 4 ? mL >>> (8 * k) : mH >>> (8 * (k - 4)); // a Uint8Array keeps the low byte
    }
  }
  if (elem >= 8) {
    // the id leads (ids stay far below 2^32)
    const lo = id >>> 0, hi = Math.floor(id / 2 ** 32) >>> 0;
    for (let k = 0; k < 4; k++) {
      out[at + k] = (lo >>> (8 * k)) & 0xff;
      out[at + 4 + k] = (hi >>> (8 * k)) & 0xff;
    }
  }
}

function firstDiff(a: Uint8Array, b: Uint8Array, n: number): number {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

// ------------------------------------------------------------------------------------------ the model ---
class Model {
  ring: number[];
  head = 0;
  count = 0;
  nextId = 1;
  constructor(readonly cap: number) {
    this.ring = new Array(cap).fill(0);
  }
  push(id: number): void {
    this.ring[(this.head + this.count++) % this.cap] = id;
  }
  pop(): number {
    const id = this.ring[this.head]!;
    this.head = (this.head + 1) % this.cap;
    this.count--;
    return id;
  }
}

const buf = new Uint8Array(MAX_ELEM * 64);
const want = new Uint8Array(MAX_ELEM);
const hex = (v: bigint) => (v === 0n ? "0" : `0x${v.toString(16)}`); // printf's %#llx

function raw(q: Queue) {
  const n = native();
  const h = q.handle as unknown as Pointer;
  return q.kind === "mpmc"
    ? { capacity: () => Number(n.aether_mpmc_capacity(h)), elem: () => Number(n.aether_mpmc_elem_size(h)), push64: (v: bigint) => n.aether_mpmc_try_push_u64(h, v), pop64: (out: BigUint64Array) => n.aether_mpmc_try_pop_u64(h, out) }
    : { capacity: () => Number(n.aether_spsc_capacity(h)), elem: () => Number(n.aether_spsc_elem_size(h)), push64: (v: bigint) => n.aether_spsc_try_push_u64(h, v), pop64: (out: BigUint64Array) => n.aether_spsc_try_pop_u64(h, out) };
}

/** create(kind, capacity, elem) must be refused; the status it was refused with. */
function refusedWith(kind: "spsc" | "mpmc", capacity: number, elem: number): string {
  try {
    Queue.create(kind, capacity, elem).destroy();
  } catch (e) {
    if (e instanceof AetherError) return e.code;
    throw e;
  }
  return "accepted";
}

function checkRefusals(p: Producer, kind: "spsc" | "mpmc"): void {
  const bc = BAD_CAPS[p.u8() % 6]!;
  const st = refusedWith(kind, bc, 8);
  fuzzAssert(st !== "accepted", `create(capacity ${bc}) was accepted`);
  fuzzAssert(st === "AETHER_ERR_NOT_POWER_OF_TWO" || st === "AETHER_ERR_OUT_OF_RANGE", `create(capacity ${bc}) refused with ${st}`);
  const be = p.bool() ? 0 : MAX_ELEM + 1 + p.u8();
  const se = refusedWith(kind, 8, be);
  fuzzAssert(se === "AETHER_ERR_OUT_OF_RANGE", `create(elem_size ${be}) was accepted`);
}

/** Producers push count items each (tagged producer:sequence) while this thread pops them all (queue.c's
 * burst). Needs an empty queue with items of at least 8 bytes. The producers are stopped and joined before
 * any failure is thrown, so none touches the queue after it is destroyed. */
function burst(q: Queue, producers: number, count: number): void {
  const helpers = Array.from({ length: producers }, (_, k) => HelperThread.get(k));
  helpers.forEach((h, k) => h.start(CMD.burst, [q.handle, q.kind === "mpmc" ? 1 : 0, q.capacity, q.elemSize, k + 1, count]));
  const next = [0, 0, 0];
  const item = new Uint8Array(q.elemSize);
  const tag = new DataView(item.buffer);
  const spin = new Int32Array(new SharedArrayBuffer(4));
  let failure: Error | undefined;
  try {
    let last = performance.now();
    const due = (got: number) => `${producers * count - got} item(s) never received (${next.slice(1, producers + 1).map((s, k) => `producer ${k + 1}: ${s} of ${count}`).join(", ")})`;
    for (let got = 0; got < producers * count; ) {
      if (!q.tryPop(item)) {
        // Every producer is done: one more pop, and if the queue is empty the items still due were lost.
        if (helpers.every((h) => h.finished)) {
          fuzzAssert(q.tryPop(item) !== null, () => `burst: every producer is done and the queue is empty with ${due(got)}: lost`);
        } else {
          fuzzAssert(performance.now() - last < BURST_STALL_MS, () => `burst: no item for ${BURST_STALL_MS / 1000} s with ${due(got)}: the producers are stuck`);
          Atomics.wait(spin, 0, 0, 0.02); // ~sched_yield
          continue;
        }
      }
      last = performance.now();
      const seq = tag.getUint32(0, true);
      const who = tag.getUint32(4, true);
      fuzzAssert(who >= 1 && who <= producers, `burst: an item from producer ${who}, who does not exist`);
      fuzzAssert(seq === next[who], `burst: producer ${who}'s item ${seq} came when ${next[who]} was due (lost, duplicated or reordered)`);
      next[who]!++;
      got++;
    }
  } catch (e) {
    failure = e as Error;
    for (const h of helpers) h.stop();
  }
  for (const h of helpers) h.join();
  if (failure) throw failure;
  fuzzAssert(q.tryPop(item) === null, "burst: an item is left after every item was received");
}

function decodeHead(data: Uint8Array): number {
  const p = new Producer(data);
  p.u8();
  p.u8();
  if (!p.bool()) p.u8();
  return Math.min(p.pos, data.length);
}

export function describe(o: QueueOp): string {
  const name = OP_NAMES[o.code % 10]!;
  const n = o.n % 64;
  switch (name) {
    case "push_n": case "pop_n": return `${name} ${n}`;
    case "u64": return `u64 push${n & 1 ? " and pop" : ""}`;
    case "set_index": return `set_index ${hex(WRAPS[n % 4]! - BigInt(Math.floor(n / 4) % 4))}`;
    case "burst": return `burst of ${4 * n + 1} items per producer`;
    default: return name;
  }
}

function run(prog: { head: Uint8Array; ops: QueueOp[] }, log?: (l: string) => void): void {
  const p = new Producer(prog.head);
  const setup = p.u8();
  const kind = setup & 1 ? "mpmc" : "spsc";
  checkRefusals(p, kind);
  const cap = CAPS[(setup >> 1) & 7]!;
  const elem = ELEMS[(setup >> 4) & 7]!;
  let q: Queue | undefined;
  try {
    q = Queue.create(kind, cap, elem);
  } catch (e) {
    if (!(e instanceof AetherError)) throw e;
    fuzzAssert(false, `create(${cap}, ${elem}): ${e.message}`);
  }
  try {
    const r = raw(q);
    fuzzAssert(r.capacity() === cap && r.elem() === elem && q.size() === 0, `a new queue(${cap}, ${elem}) says capacity ${r.capacity()}, elem_size ${r.elem()}, size ${q.size()}`);
    log?.(`${kind} queue: capacity ${cap}, items of ${elem} bytes`);
    const m = new Model(cap);
    const u64 = new BigUint64Array(1);
    prog.ops.slice(0, MAX_OPS).forEach((o, i) => {
      const op = o.code % 10;
      const n = o.n % 64;
      switch (op) {
        case 0: case 1: { // try_push
          log?.(`op ${i}: try_push`);
          itemBytes(m.nextId, elem, want);
          const ok = q.tryPush(want.subarray(0, elem));
          fuzzAssert(ok === m.count < cap, `op ${i}: try_push returned ${ok} with ${m.count} of ${cap} items`);
          if (ok) m.push(m.nextId++);
          break;
        }
        case 2: case 3: { // try_pop
          log?.(`op ${i}: try_pop`);
          const ok = q.tryPop(buf.subarray(0, elem)) !== null;
          fuzzAssert(ok === m.count > 0, `op ${i}: try_pop returned ${ok} with ${m.count} items`);
          if (!ok) break;
          const id = m.pop();
          itemBytes(id, elem, want);
          const d = firstDiff(buf, want, elem);
          fuzzAssert(d < 0, `op ${i}: try_pop: not item ${id}, the oldest (byte ${d} differs)`);
          break;
        }
        case 4: { // push_n
          log?.(`op ${i}: push_n ${n}`);
          for (let k = 0; k < n; k++) itemBytes(m.nextId + k, elem, buf, k * elem);
          const moved = q.pushN(buf, n);
          const room = cap - m.count;
          fuzzAssert(moved === Math.min(n, room), `op ${i}: push_n(${n}) moved ${moved} with room for ${room}`);
          for (let k = 0; k < moved; k++) m.push(m.nextId++);
          m.nextId += n - moved; // ids of items not pushed are skipped, as the C target does
          break;
        }
        case 5: { // pop_n
          log?.(`op ${i}: pop_n ${n}`);
          const moved = q.popN(buf, n);
          fuzzAssert(moved === Math.min(n, m.count), `op ${i}: pop_n(${n}) moved ${moved} of ${m.count} items`);
          for (let k = 0; k < moved; k++) {
            const id = m.pop();
            itemBytes(id, elem, want);
            const d = firstDiff(buf.subarray(k * elem), want, elem);
            fuzzAssert(d < 0, `op ${i}: pop_n: item ${k} is not ${id} (byte ${d} differs)`);
          }
          break;
        }
        case 6: { // the u64 paths
          log?.(`op ${i}: u64 push and pop`);
          const nat = native();
          nat.aether_clear_error();
          if (elem !== 8) {
            // The wrapper refuses these before C sees them; the C API's own refusal is what is checked.
            fuzzAssert(!r.push64(1n) && lastError().code === "AETHER_ERR_INVALID_ARGUMENT", `op ${i}: try_push_u64 on ${elem}-byte items was not refused with INVALID_ARGUMENT`);
            fuzzAssert(!r.pop64(u64) && lastError().code === "AETHER_ERR_INVALID_ARGUMENT", `op ${i}: try_pop_u64 on ${elem}-byte items was not refused with INVALID_ARGUMENT`);
            break;
          }
          const ok = q.tryPushU64(BigInt(m.nextId)); // item_bytes(id) of 8 bytes is the id itself
          fuzzAssert(ok === m.count < cap, `op ${i}: try_push_u64 returned ${ok} with ${m.count} of ${cap} items`);
          if (ok) m.push(m.nextId++);
          if (n & 1) {
            const v = q.tryPopU64();
            fuzzAssert((v !== null) === m.count > 0, `op ${i}: try_pop_u64 returned ${v !== null} with ${m.count} items`);
            if (v !== null) {
              const id = m.pop();
              fuzzAssert(v === BigInt(id), `op ${i}: pop_u64: ${v}, expected ${id}`);
            }
          }
          break;
        }
        case 7: { // move the indices near a wrap (only an empty queue)
          const at = WRAPS[n % 4]! - BigInt(Math.floor(n / 4) % 4);
          log?.(`op ${i}: set_index ${hex(at)}`);
          let st = "AETHER_OK";
          try {
            q.debugSetIndex(at);
          } catch (e) {
            if (!(e instanceof AetherError)) throw e;
            st = e.code;
          }
          fuzzAssert(st === (m.count === 0 ? "AETHER_OK" : "AETHER_ERR_BUSY"), `op ${i}: set_index: ${st} with ${m.count} items`);
          break;
        }
        case 8: { // burst
          if (m.count !== 0 || elem < 8) break;
          const producers = kind === "mpmc" ? 2 : 1;
          const count = n * 4 + 1;
          log?.(`op ${i}: burst of ${producers} producer(s) x ${count} items`);
          burst(q, producers, count);
          break;
        }
        default: break;
      }
      const { head, tail } = q.debugIndices();
      const diff = BigInt.asUintN(64, head - tail);
      const size = q.size();
      fuzzAssert(diff === BigInt(m.count) && size === m.count, `op ${i}: head - tail = ${diff}, size ${size}, the model ${m.count}`);
    });
  } finally {
    q.destroy();
  }
  log?.("done: no finding");
}

export const queueTarget: BuiltinTarget<QueueOp> = {
  name: "queue",
  description: "the SPSC and MPMC queues through the FFI: push/pop/batch/u64/wrap programs and threaded bursts against fuzz/queue.c's model FIFO",
  maxLen: 2048,
  decode(data) {
    const at = decodeHead(data);
    const p = new Producer(data);
    p.pos = at;
    const ops: QueueOp[] = [];
    while (!p.empty && ops.length < MAX_OPS) ops.push({ code: p.u8(), n: p.u8() });
    return { head: data.slice(0, at), ops };
  },
  encode(prog) {
    const e = new Encoder().raw(prog.head);
    for (const o of prog.ops) e.u8(o.code).u8(o.n);
    return e.finish();
  },
  simplify(o) {
    const out: QueueOp[] = [];
    if (o.n % 64 > 0) out.push({ ...o, n: 0 }, { ...o, n: (o.n % 64) >> 1 });
    return out;
  },
  describe,
  run,
};
