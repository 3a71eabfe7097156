// pool.ts (builtin): the lock-free aligned pool through the FFI against a model of its blocks, decoding
// fuzz/pool.c's inputs and checking them the same way:
// - create refuses what the documentation refuses, with its status;
// - an allocation succeeds exactly while fewer than max_blocks are in use (LIMIT_REACHED after), and gives a
//   zeroed block aligned as asked, apart from every block in use; a block keeps what was written to it;
// - a free of a block in use succeeds; a second free is DOUBLE_FREE, an interior pointer INVALID_POINTER (or
//   MISALIGNED when it is not aligned), a foreign pointer INVALID_POINTER; a refused free changes nothing
//   (the block stays in use, the counts as the model's); NULL is a no-op;
// - the stats count blocks in use, allocations, frees and each kind of refusal as the model does; destroy
//   reports the blocks still outstanding.
// Frees and cache flushes "from a second thread" run on a helper thread (a Bun Worker, helper.ts), so they
// land in that thread's cache as the C target's pthread's do. Refused frees are reported on stderr unless
// the allocator's "quiet" option is on: it is set, as fuzz/pool.c sets it.
import { ptr, toArrayBuffer } from "bun:ffi";
import { AetherError, lastError, native, type Pointer } from "../../../native/ffi.ts";
import { memory } from "../../../native/memory.ts";
import { Pool } from "../../../native/pool.ts";
import { Encoder, fuzzAssert, Producer } from "../producer.ts";
import { CMD, HelperThread } from "./helper.ts";
import type { BuiltinTarget } from "./types.ts";

const MAX_BLOCKS = 128;
const MAX_OPS = 300;
const SIZES = [1, 8, 64, 100, 4096, 24, 1000, 65536];
const ALIGNS = [64, 128, 4096, 64, 256, 65536, 1 << 21, 64];
const OK = 0, MISALIGNED = -5, INVALID_POINTER = -13, DOUBLE_FREE = -14;
const BAD: { bs: number; al: number; init: number; max: number }[] = [
  { bs: 0, al: 64, init: 0, max: 0 }, { bs: 2 ** 30 + 1, al: 64, init: 0, max: 0 }, { bs: 64, al: 32, init: 0, max: 0 },
  { bs: 64, al: 96, init: 0, max: 0 }, { bs: 64, al: 2 ** 22, init: 0, max: 0 }, { bs: 64, al: 64, init: 10, max: 5 },
];
const OP_NAMES = ["alloc", "alloc", "alloc", "free", "free_other", "free_interior", "free_foreign", "flush_cache", "write"] as const;

export interface PoolOp {
  /** the opcode byte (code % 9 picks the operation) */
  code: number;
  /** picks the block (sel % blocks seen) */
  sel: number;
  /** the operation's value: interior offset, foreign pointer kind, which thread flushes, the fill byte */
  v: number;
}

interface Blk {
  p: number;
  live: boolean;
  fill: number;
}

const errName = (st: number) => String(native().aether_error_name(st));
const addr = (p: number | null) => (p ? `0x${p.toString(16)}` : "(nil)"); // printf's %p
const bytesAt = (p: number, n: number) => new Uint8Array(toArrayBuffer(p as Pointer, 0, n));
function firstNot(p: number, n: number, c: number): number {
  const b = bytesAt(p, n);
  for (let i = 0; i < n; i++) if (b[i] !== c) return i;
  return -1;
}

function describe(o: PoolOp): string {
  const name = OP_NAMES[o.code % 9]!;
  switch (name) {
    case "free_interior": return `free_interior block#${o.sel} +${o.v}`;
    case "free_foreign": return `free_foreign ${["stack", "heap", "NULL"][o.v % 3]}`;
    case "flush_cache": return `flush_cache${o.v & 1 ? " (helper)" : ""}`;
    case "write": return `write block#${o.sel} = ${o.v & 0xff}`;
    case "alloc": return "alloc";
    default: return `${name} block#${o.sel}`;
  }
}

function statusOf(fn: () => void): number {
  try {
    fn();
    return OK;
  } catch (e) {
    if (e instanceof AetherError) return e.status;
    throw e;
  }
}

let ready = false;

function run(prog: { head: Uint8Array; ops: PoolOp[] }, log?: (l: string) => void): void {
  if (!ready) {
    memory.setOption("quiet", true); // the pool's reports go through the same switch
    ready = true;
  }
  const p = new Producer(prog.head);
  const a = p.u8(), b = p.u8();
  // Refused arguments first.
  const bad = BAD[b % 6]!;
  let refused = "accepted";
  try {
    Pool.create({ blockSize: bad.bs, alignment: bad.al, initialBlocks: bad.init, maxBlocks: bad.max }).destroy();
  } catch (e) {
    if (!(e instanceof AetherError)) throw e;
    refused = e.code;
  }
  fuzzAssert(refused !== "accepted", `create(${bad.bs}, ${bad.al}, ${bad.init}, ${bad.max}) was accepted`);
  fuzzAssert(refused === "AETHER_ERR_OUT_OF_RANGE" || refused === "AETHER_ERR_NOT_POWER_OF_TWO", `create refused with ${refused}`);

  const blockSize = SIZES[a & 7]!;
  const alignment = ALIGNS[(a >> 3) & 7]!;
  const maxBlocks = (b >> 3) & 1 ? 0 : 1 + ((b >> 4) % 16) * 4;
  const initial = maxBlocks && b & 0x80 ? Math.floor(maxBlocks / 2) : 0;
  let pool: Pool | undefined;
  try {
    pool = Pool.create({ blockSize, alignment, initialBlocks: initial, maxBlocks });
  } catch (e) {
    if (!(e instanceof AetherError)) throw e;
    fuzzAssert(false, `create(${blockSize}, ${alignment}, ${initial}, ${maxBlocks}): ${e.message}`);
  }
  log?.(`pool: blocks of ${blockSize} bytes, ${alignment}-aligned, ${initial} initial, max ${maxBlocks}`);
  const helper = HelperThread.get(0);
  const onHelper = (cmd: number, block = 0) => helper.call(cmd, [pool!.handle, blockSize, block]);
  const blocks: Blk[] = [];
  let inUse = 0, allocs = 0, frees = 0, doubleFrees = 0, invalidFrees = 0;
  const stride = (blockSize + alignment - 1) & ~(alignment - 1);
  const cap = maxBlocks || 48;
  const checkStats = (what: string) => {
    const s = pool!.stats();
    fuzzAssert(
      s.inUse === inUse && s.allocs === allocs && s.frees === frees && s.doubleFrees === doubleFrees && s.invalidFrees === invalidFrees && s.corrupted === 0,
      `${what}: stats in_use ${s.inUse} allocs ${s.allocs} frees ${s.frees} double ${s.doubleFrees} invalid ${s.invalidFrees} corrupted ${s.corrupted}; the model ${inUse} ${allocs} ${frees} ${doubleFrees} ${invalidFrees} 0`,
    );
    fuzzAssert(s.blockSize === blockSize && s.alignment === alignment && s.stride === stride, `${what}: stats say blocks of ${s.blockSize}, ${s.alignment}-aligned, stride ${s.stride}; the pool was made with ${blockSize}, ${alignment} (stride ${stride})`);
    fuzzAssert(s.freeBlocks === s.totalBlocks - s.inUse, `${what}: free_blocks ${s.freeBlocks} is not total_blocks ${s.totalBlocks} - in_use ${s.inUse}`);
    fuzzAssert(maxBlocks === 0 || s.totalBlocks <= maxBlocks, `${what}: ${s.totalBlocks} blocks in a pool of at most ${maxBlocks}`);
  };
  let done = false;
  try {
    prog.ops.slice(0, MAX_OPS).forEach((o, i) => {
      const op = o.code % 9;
      const x = blocks.length ? blocks[o.sel % blocks.length] : undefined;
      const v = o.v;
      switch (op) {
        case 0: case 1: case 2: { // alloc
          if (blocks.length === MAX_BLOCKS) break;
          if (!maxBlocks && inUse >= cap) break; // unbounded pools grow; keep the model small
          log?.(`op ${i}: alloc`);
          native().aether_clear_error();
          const q = pool!.tryAlloc() as number | null;
          if (maxBlocks && inUse === maxBlocks) {
            const code = lastError().code;
            fuzzAssert(q === null && code === "AETHER_ERR_LIMIT_REACHED", `op ${i}: alloc past max_blocks ${maxBlocks} returned ${addr(q)} (${code})`);
            break;
          }
          fuzzAssert(q !== null, () => `op ${i}: alloc with ${inUse} of ${maxBlocks} in use failed: ${lastError().message}`);
          fuzzAssert(q % alignment === 0, `op ${i}: block ${addr(q)} is not ${alignment}-aligned`);
          fuzzAssert(firstNot(q, blockSize, 0) < 0, `op ${i}: block ${addr(q)} is not zeroed`);
          for (const k of blocks)
            if (k.live) fuzzAssert(q + blockSize <= k.p || k.p + blockSize <= q, `op ${i}: block ${addr(q)} overlaps block ${addr(k.p)} in use`);
          let nb = blocks.find((k) => k.p === q); // a block freed earlier, handed out again
          if (!nb) blocks.push((nb = { p: q, live: false, fill: 0 }));
          nb.live = true;
          nb.fill = (i * 7 + 1) & 0xff;
          bytesAt(q, blockSize).fill(nb.fill);
          inUse++;
          allocs++;
          break;
        }
        case 3: case 4: { // free, here or on the helper thread
          if (!x) break;
          log?.(`op ${i}: free ${addr(x.p)} (${x.live ? "in use" : "free"})${op === 4 ? " from another thread" : ""}`);
          if (x.live) fuzzAssert(firstNot(x.p, blockSize, x.fill) < 0, `op ${i}: block ${addr(x.p)} lost what was written to it`);
          const st = op === 4 ? onHelper(CMD.poolFree, x.p) : pool!.tryFree(x.p);
          if (x.live) {
            fuzzAssert(st === OK, `op ${i}: free of a block in use: ${errName(st)}`);
            x.live = false;
            inUse--;
            frees++;
          } else {
            fuzzAssert(st === DOUBLE_FREE, `op ${i}: second free: ${errName(st)}, not AETHER_ERR_DOUBLE_FREE`);
            doubleFrees++;
          }
          break;
        }
        case 5: { // an interior pointer
          if (!x || stride < 2) break;
          const q = x.p + 1 + (v % (stride - 1));
          const want = q & (alignment - 1) ? MISALIGNED : INVALID_POINTER;
          log?.(`op ${i}: free interior ${addr(q)} (+${q - x.p})`);
          const st = pool!.tryFree(q);
          fuzzAssert(st === want, `op ${i}: free of ${addr(q)}, ${q - x.p} bytes into a block: ${errName(st)}, expected ${errName(want)}`);
          invalidFrees++;
          break;
        }
        case 6: { // foreign pointers (this thread's memory, the system heap's), and NULL
          const local = new Uint8Array(64); // memory the pool never handed out, like the C target's stack array
          const heap = memory.malloc(64) as number | null;
          const q = v % 3 === 0 ? (ptr(local) as number) : v % 3 === 1 ? heap : null;
          log?.(`op ${i}: free foreign ${addr(q)}`);
          const st = pool!.tryFree(q);
          if (q === null) {
            fuzzAssert(st === OK, `op ${i}: free of NULL: ${errName(st)}`);
          } else {
            fuzzAssert(st === INVALID_POINTER, `op ${i}: free of a foreign pointer: ${errName(st)}`);
            invalidFrees++;
          }
          memory.free(heap as Pointer | null);
          break;
        }
        case 7: { // flush a cache
          log?.(`op ${i}: flush_cache${v & 1 ? " (helper)" : ""}`);
          const st = v & 1 ? onHelper(CMD.poolFlush) : statusOf(() => pool!.flushCache());
          fuzzAssert(st === OK, `op ${i}: flush_cache: ${errName(st)}`);
          break;
        }
        default: // write into a block in use (its own bytes)
          if (!x || !x.live) break;
          x.fill = v & 0xff;
          bytesAt(x.p, blockSize).fill(x.fill);
          break;
      }
      checkStats(`op ${i} (${OP_NAMES[op]}) after the operation`);
    });
    // Both threads give their cached blocks back, then destroy reports the ones still in use.
    const st = onHelper(CMD.poolFlush);
    fuzzAssert(st === OK, `end: the helper's flush_cache: ${errName(st)}`);
    done = true;
    const outstanding = pool!.destroy();
    fuzzAssert(outstanding === inUse, `destroy reported ${outstanding} outstanding blocks, the model ${inUse}`);
  } finally {
    if (!done) {
      // A failed program leaves no pool behind for the next one (the C target aborts instead); the failure
      // being thrown is what counts, so the cleanup's own outcome is not checked.
      try {
        helper.call(CMD.poolFlush, [pool!.handle, blockSize, 0]);
      } catch {
        // the helper's failure, if any, was the one thrown
      }
      pool!.destroy();
    }
  }
  log?.("done: no finding");
}

export const poolTarget: BuiltinTarget<PoolOp> = {
  name: "pool",
  description: "the aligned block pool through the FFI: alloc/free/double/interior/foreign-free programs, frees from a second thread, against fuzz/pool.c's model",
  maxLen: 2048,
  decode(data) {
    const p = new Producer(data);
    p.u8();
    p.u8();
    const head = data.slice(0, Math.min(p.pos, data.length));
    const ops: PoolOp[] = [];
    while (!p.empty && ops.length < MAX_OPS) ops.push({ code: p.u8(), sel: p.u8(), v: p.u16() });
    return { head, ops };
  },
  encode(prog) {
    const e = new Encoder().raw(prog.head);
    for (const o of prog.ops) e.u8(o.code).u8(o.sel).u16(o.v);
    return e.finish();
  },
  simplify(o) {
    const out: PoolOp[] = [];
    if (o.sel > 0) out.push({ ...o, sel: 0 });
    if (o.v > 0) out.push({ ...o, v: 0 }, { ...o, v: o.v >> 1 });
    return out;
  },
  describe,
  run,
};
