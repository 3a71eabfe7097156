// devpool.ts (builtin): the device memory pools (host backend) through the FFI, running fuzz/devpool.c's
// multi-tenant programs (decoded from the same inputs) against the same model of handles, quotas and shared
// objects. The input registers up to 6 security contexts (3 tenants, 3 runtimes, 3 levels, some isolated),
// then runs allocations (zeroed or not, refused sizes and flags), frees, bounds-checked writes, reads and
// fills, sizes, addresses, quotas set and lowered, shared objects created (immutable or not, with permission
// lists), acquired for reading or writing (ownership moves), released to their end, trims, leak counts and
// stats, with every handle used from the right context, the wrong context, the wrong tenant, after its free,
// as the wrong kind, and forged (bits flipped, made up). Checked:
// - every call's status is the model's: OK, FORGED_HANDLE, STALE_HANDLE, ACCESS_DENIED, OUT_OF_BOUNDS,
//   QUOTA_EXCEEDED, READ_ONLY, NOT_OWNER, OUT_OF_RANGE or INVALID_ARGUMENT, and a refusal changes nothing;
// - bytes read back are what the program wrote (zeroed allocations and new shared objects read as zeros
//   after their initial bytes); a tenant's quota counts bytes rounded up to 256 and live allocations;
// - live counts, leak listings and share_info (refcount, owner) agree with the model.
// Calls go through the typed wrapper (cli/native/devpool.ts), whose failures are AetherErrors carrying the
// status; three the wrapper cannot express use the raw symbols as the C target does: an allocation with an
// undefined flag bit, a shared object with no permission list at all (NULL, not ""), and an acquire with an
// access mode that is neither read nor read-write.
import { AetherError, cstr, native } from "../../../native/ffi.ts";
import { DevicePools, LEVELS, type DeviceContext } from "../../../native/devpool.ts";
import { memory } from "../../../native/memory.ts";
import { Encoder, fuzzAssert, mix64, Producer } from "../producer.ts";
import type { BuiltinTarget } from "./types.ts";

const MAX_CTX = 6;
const MAX_H = 96;
const MAX_SIZE = 2048;
const MAX_OPS = 200;
const TENANTS = ["acme", "bio.lab", "team-7"];
const RUNTIMES = ["julia", "elixir", "runa"];
const PERMS: (string | null)[] = [null, "", "*:r", "*:rw", "elixir:rw,*:r", "julia:r,runa:rw"];
const ACCESS_READ = 1, ACCESS_READ_WRITE = 3;
const S = {
  OK: 0, INVALID_ARGUMENT: -1, OUT_OF_RANGE: -4, QUOTA_EXCEEDED: -22, ACCESS_DENIED: -23, STALE_HANDLE: -24,
  FORGED_HANDLE: -25, OUT_OF_BOUNDS: -26, READ_ONLY: -27, NOT_OWNER: -28,
} as const;
const K_ALLOC = 1, K_OBJECT = 2, K_REF = 3;

const OP_NAMES = ["alloc", "alloc", "free", "write", "fill", "read", "size", "quota", "share_create", "acquire", "release", "info"] as const;

/** One operation as read: its opcode and context bytes, then its own fields in the order the C target reads
 * them (the handle picks, a mode, sizes, offsets, values). */
export interface DevpoolOp {
  code: number;
  ctx: number;
  f: number[];
}
// The fields each operation reads after its opcode and context: [bytes of each field].
const FIELDS: Record<number, number[]> = {
  0: [1, 2], 1: [1, 2], // mode, size-1 (range 1..2048: two bytes)
  2: [1, 1], // handle pick: sel, bit
  3: [1, 1, 2, 2, 1], 4: [1, 1, 2, 2, 1], 5: [1, 1, 2, 2, 1], // handle pick, offset, length, value
  6: [1, 1],
  7: [1, 1], // tenant, quota
  8: [1, 2, 2], // mode, size (0..2048), initial bytes (0..2056)
  9: [1, 1, 1], // handle pick, access
  10: [1, 1],
  11: [1, 1],
};

interface Hnd {
  kind: number;
  v: bigint;
  ctx: number; // owner (alloc, ref) or creator (object)
  live: boolean;
  size: number;
  data: Uint8Array; // alloc, object: contents
  known: Uint8Array; // which bytes the model knows
  obj?: Hnd; // ref: its object
  access: number; // ref
  immutable: boolean; // object
  perms: number; // object
  refcount: number; // object
  ownerRef: bigint; // object
}
interface Ctx {
  id: number;
  tenant: number;
  runtime: number;
  level: number;
  isolated: boolean;
  dc: DeviceContext;
}

const hex = (v: bigint) => (v === 0n ? "0" : `0x${v.toString(16)}`); // printf's %#llx
const errName = (st: number) => String(native().aether_error_name(st));
const chargeOf = (size: number) => (size + 255) & ~255;

/** The status of a wrapper call: 0, or the AetherError's (with its message for the account). */
function statusOf(fn: () => void): { st: number; msg: string } {
  try {
    fn();
    return { st: 0, msg: "" };
  } catch (e) {
    if (e instanceof AetherError) return { st: e.status, msg: e.message };
    throw e;
  }
}

class Run {
  H: Hnd[] = [];
  byV = new Map<bigint, Hnd>();
  C: Ctx[] = [];
  quotaBytes = [0, 0, 0];
  quotaCount = [0, 0, 0];
  usedBytes = [0, 0, 0];
  usedCount = [0, 0, 0];
  curHandle = 0n;
  constructor(readonly dp: DevicePools) {}

  find(v: bigint): Hnd | undefined {
    return this.byV.get(v);
  }
  tenantOf(ctx: number): number {
    return this.C.find((c) => c.id === ctx)!.tenant;
  }
  quotaOk(t: number, size: number): boolean {
    const b = this.usedBytes[t]! + chargeOf(size), c = this.usedCount[t]! + 1;
    return !((this.quotaBytes[t] && b > this.quotaBytes[t]!) || (this.quotaCount[t] && c > this.quotaCount[t]!));
  }
  /** A made-up handle carries 14 keyed check bits (the manager's key is random), so one in 16384 passes the
   * check: it is then refused for its kind, owner or generation instead of as forged. Any refusal is right. */
  madeUpTolerated(got: number, want: number): boolean {
    const v = this.curHandle;
    if (this.find(v) === undefined && v !== 0n && want === S.FORGED_HANDLE)
      return got === S.FORGED_HANDLE || got === S.INVALID_ARGUMENT || got === S.ACCESS_DENIED || got === S.STALE_HANDLE;
    return false;
  }
  expect(r: { st: number; msg: string }, want: number, what: string): void {
    fuzzAssert(r.st === want || this.madeUpTolerated(r.st, want), () => `${what}: ${errName(r.st)} (${r.msg}), the model says ${errName(want)}`);
  }
  /** Resolving v as an allocation handle from ctx (the library's order: kind, forged, owner, stale). */
  resolveAlloc(v: bigint, ctx: number): number {
    const x = this.find(v);
    if (!x) return S.FORGED_HANDLE;
    if (x.kind !== K_ALLOC) return S.INVALID_ARGUMENT;
    if (x.ctx !== ctx) return S.ACCESS_DENIED;
    return x.live ? S.OK : S.STALE_HANDLE;
  }
  /** Reference slots are shared by every context, so a released reference is stale whoever held it; a live
   * one of another context is denied. */
  resolveRef(v: bigint, ctx: number): number {
    const x = this.find(v);
    if (!x || x.kind !== K_REF) return S.FORGED_HANDLE;
    if (!x.live) return S.STALE_HANDLE;
    return x.ctx !== ctx ? S.ACCESS_DENIED : S.OK;
  }
  resolveObject(v: bigint): number {
    const x = this.find(v);
    if (!x) return S.FORGED_HANDLE;
    if (x.kind !== K_OBJECT) return S.INVALID_ARGUMENT;
    return x.live ? S.OK : S.STALE_HANDLE;
  }
  /** A handle for an operation: one the program holds, or a forged one (a bit flipped, made up, zero). */
  pickHandle(sel: number, bit: number): bigint {
    const nh = this.H.length;
    let v: bigint;
    if (sel < 200 && nh > 0) v = this.H[sel % nh]!.v;
    else if (sel < 240 && nh > 0) {
      v = this.H[sel % nh]!.v ^ (1n << BigInt(bit % 64));
      if (this.find(v)) v ^= 1n;
    } else v = sel === 255 ? 0n : mix64({ s: BigInt(bit * 7919 + sel) });
    this.curHandle = v;
    return v;
  }
  newHandle(kind: number, v: bigint, ctx: number, size: number): Hnd {
    fuzzAssert(this.find(v) === undefined, `handle ${hex(v)} issued twice`);
    fuzzAssert(v !== 0n, "handle 0 issued");
    const x: Hnd = { kind, v, ctx, live: true, size, data: new Uint8Array(kind === K_REF ? 0 : size), known: new Uint8Array(kind === K_REF ? 0 : size), access: 0, immutable: false, perms: 0, refcount: 0, ownerRef: 0n };
    this.H.push(x);
    this.byV.set(v, x);
    return x;
  }
  /** Copies through an allocation or a reference go to the data holder (the allocation or the object). */
  holder(v: bigint): Hnd {
    const x = this.find(v)!;
    return x.kind === K_REF ? x.obj! : x;
  }
  ioExpect(v: bigint, ctx: number, writing: boolean, off: number, len: number): number {
    const x = this.find(v);
    let st: number;
    if (x && x.kind === K_REF) {
      st = this.resolveRef(v, ctx);
      if (st === S.OK && writing) {
        const o = x.obj!;
        if (o.immutable || x.access !== ACCESS_READ_WRITE) st = S.READ_ONLY;
        else if (o.ownerRef !== v) st = S.NOT_OWNER;
      }
    } else st = this.resolveAlloc(v, ctx);
    if (st !== S.OK) return st;
    const size = this.holder(v).size;
    return off > size || len > size - off ? S.OUT_OF_BOUNDS : S.OK;
  }
  objectGone(o: Hnd): void {
    o.live = false;
    const t = this.tenantOf(o.ctx);
    this.usedBytes[t]! -= chargeOf(o.size);
    this.usedCount[t]!--;
  }
  /** What ctx may do with an object other runtimes get through its permission list. */
  mayAccess(o: Hnd, c: Ctx): number {
    const creator = this.C.find((k) => k.id === o.ctx)!;
    if (creator.runtime === c.runtime) return ACCESS_READ_WRITE;
    const list = PERMS[o.perms];
    if (list === null || list === undefined) return 0;
    // the exact runtime's entry first, else the '*' entry
    let any = 0, exact = -1;
    for (const e of list.split(",").filter(Boolean)) {
      const [rt, acc] = e.split(":");
      const a = acc === "rw" ? ACCESS_READ_WRITE : ACCESS_READ;
      if (rt === RUNTIMES[c.runtime] && exact < 0) exact = a;
      if (rt === "*") any = a;
    }
    return exact >= 0 ? exact : any;
  }
}

let ready = false;
const io = new Uint8Array(MAX_SIZE + 64);

function run(prog: { head: Uint8Array; ops: DevpoolOp[] }, log?: (l: string) => void): void {
  if (!ready) {
    memory.setOption("quiet", true);
    ready = true;
  }
  const p = new Producer(prog.head);
  const setup = p.u8();
  let dp: DevicePools;
  try {
    // retain_bytes: the C target's UINT64_MAX ("keep every empty slab") is past what a JS number holds; any
    // figure no pool can reach means the same, and MAX_SAFE_INTEGER bytes (8 PiB) is one.
    dp = DevicePools.create({ backend: "host", slabBytes: 64 << 10, retainBytes: setup & 1 ? 0 : Number.MAX_SAFE_INTEGER, auditRing: 64, verifyWipe: (setup & 2) !== 0, ignoreEnvAudit: true });
  } catch (e) {
    if (!(e instanceof AetherError)) throw e;
    fuzzAssert(false, `create: ${e.message}`);
  }
  try {
    runProgram(new Run(dp), setup, p, prog.ops, log);
  } finally {
    dp.destroy();
  }
  log?.("done: no finding");
}

function runProgram(R: Run, setup: number, p: Producer, ops: DevpoolOp[], log?: (l: string) => void): void {
  const dp = R.dp;
  const C = R.C;
  const wantCtx = 1 + ((setup >> 2) % MAX_CTX);
  for (let i = 0; i < wantCtx; i++) {
    const b = p.u8();
    const c = { id: 0, tenant: b % 3, runtime: Math.floor(b / 3) % 3, level: Math.floor(b / 9) % 3, isolated: (b & 0xc0) === 0xc0 };
    let dc: DeviceContext | undefined;
    R.expect(statusOf(() => (dc = dp.context(TENANTS[c.tenant]!, RUNTIMES[c.runtime]!, LEVELS[c.level], { isolated: c.isolated }))), S.OK, "context");
    const id = dc!.id;
    const same = C.find((k) => k.tenant === c.tenant && k.runtime === c.runtime && k.level === c.level && k.isolated === c.isolated);
    if (same) {
      fuzzAssert(id === same.id, `the same context got ids ${id} and ${same.id}`);
      continue;
    }
    for (const k of C) fuzzAssert(k.id !== id, `two contexts got id ${id}`);
    C.push({ ...c, id, dc: dc! });
    log?.(`context ${id}: ${TENANTS[c.tenant]}/${RUNTIMES[c.runtime]} level ${c.level}${c.isolated ? " isolated" : ""}`);
  }
  R.expect(statusOf(() => dp.context("bad name!", "julia", "public")), S.INVALID_ARGUMENT, "a bad tenant name");

  const out = new BigUint64Array(1);
  const ref = new BigUint64Array(1);
  ops.slice(0, MAX_OPS).forEach((o, i) => {
    const op = o.code % 12;
    const c = C[o.ctx % C.length]!;
    const ctx = c.id;
    const dc = c.dc;
    const f = o.f;
    R.curHandle = 0n;
    const label = `op ${i}`;
    switch (op) {
      case 0: case 1: { // alloc
        const mode = f[0]!;
        let sz = 1 + (f[1]! % MAX_SIZE);
        let flags = mode & 1 ? 1 : 0; // AETHER_ALLOC_ZERO
        let want: number = R.quotaOk(c.tenant, sz) ? S.OK : S.QUOTA_EXCEEDED;
        if (mode % 16 === 14) {
          sz = 0;
          want = S.OUT_OF_RANGE;
        }
        if (mode % 16 === 15) {
          flags |= 0x40;
          want = S.INVALID_ARGUMENT;
        }
        if (R.H.length === MAX_H) break;
        log?.(`op ${i}: alloc ctx ${ctx} size ${sz} flags ${flags ? `0x${flags.toString(16)}` : "0"}`);
        let v = 0n;
        if (flags & 0x40) {
          // An undefined flag bit: the wrapper takes { zero } only, so the raw call (and its out value).
          out[0] = 0n;
          const st = native().aether_devpool_alloc(dp.ptr, ctx, BigInt(sz), flags, out) as number;
          R.expect({ st, msg: st ? String(native().aether_last_error()) : "" }, want, label);
          fuzzAssert(out[0] === 0n, `${label}: a refused alloc wrote handle ${hex(out[0]!)}`);
          break;
        }
        R.expect(statusOf(() => (v = dc.alloc(sz, { zero: (flags & 1) !== 0 }))), want, label);
        if (want !== S.OK) break;
        const x = R.newHandle(K_ALLOC, v, ctx, sz);
        if (flags & 1) x.known.fill(1); // data is already zero
        R.usedBytes[c.tenant]! += chargeOf(sz);
        R.usedCount[c.tenant]!++;
        break;
      }
      case 2: { // free
        const v = R.pickHandle(f[0]!, f[1]!);
        const want = R.resolveAlloc(v, ctx);
        log?.(`op ${i}: free ${hex(v)} from ctx ${ctx}`);
        R.expect(statusOf(() => dc.free(v)), want, label);
        if (want === S.OK) {
          const x = R.find(v)!;
          x.live = false;
          R.usedBytes[c.tenant]! -= chargeOf(x.size);
          R.usedCount[c.tenant]!--;
        }
        break;
      }
      case 3: case 4: case 5: { // write, fill, read
        const v = R.pickHandle(f[0]!, f[1]!);
        const off = f[2]!, len = f[3]! % (MAX_SIZE + 64), val = f[4]!;
        const at = off % (MAX_SIZE + 64);
        const writing = op !== 5;
        const want = R.ioExpect(v, ctx, writing, at, len);
        log?.(`op ${i}: ${op === 3 ? "write" : op === 4 ? "fill" : "read"} ${hex(v)} [${at}, +${len}) from ctx ${ctx}`);
        let got: Uint8Array | undefined;
        if (op === 3) {
          for (let k = 0; k < len; k++) io[k] = (val + k * 13) & 0xff;
          R.expect(statusOf(() => dc.write(v, at, io.subarray(0, len))), want, label);
        } else if (op === 4) {
          R.expect(statusOf(() => dc.fill(v, at, val, len)), want, label);
        } else {
          R.expect(statusOf(() => (got = dc.read(v, at, len))), want, label);
        }
        if (want !== S.OK || len === 0) break;
        const x = R.holder(v);
        for (let k = 0; k < len; k++) {
          if (op === 5) {
            if (x.known[at + k])
              fuzzAssert(got![k] === x.data[at + k], () => `${label}: byte ${at + k} of ${hex(v)} reads 0x${got![k]!.toString(16)}, the program left 0x${x.data[at + k]!.toString(16)}`);
          } else {
            x.data[at + k] = op === 3 ? io[k]! : val;
            x.known[at + k] = 1;
          }
        }
        break;
      }
      case 6: { // size and address
        const v = R.pickHandle(f[0]!, f[1]!);
        const x = R.find(v);
        const want = x && x.kind === K_REF ? R.resolveRef(v, ctx) : R.resolveAlloc(v, ctx);
        let size = 0, address = 0n;
        R.expect(statusOf(() => (size = dc.size(v))), want, label);
        if (want === S.OK) fuzzAssert(size === R.holder(v).size, `${label}: size ${size}, the model ${R.holder(v).size}`);
        R.expect(statusOf(() => (address = dc.address(v))), want, label);
        if (want === S.OK) fuzzAssert(address !== 0n, `${label}: address 0`);
        break;
      }
      case 7: { // quota for a tenant: off, generous, tight
        const t = f[0]! % 3;
        const q = f[1]!;
        R.quotaBytes[t] = q % 3 === 0 ? 0 : ((q % 16) + 1) * 512;
        R.quotaCount[t] = q % 5 === 0 ? 0 : (q % 7) + 1;
        log?.(`op ${i}: quota ${TENANTS[t]} ${R.quotaBytes[t]} bytes ${R.quotaCount[t]} allocations`);
        R.expect(statusOf(() => dp.setQuota(TENANTS[t]!, { bytes: R.quotaBytes[t], count: R.quotaCount[t] })), S.OK, label);
        break;
      }
      case 8: { // share_create
        const mode = f[0]!;
        const sz = f[1]! % (MAX_SIZE + 1);
        const initLen = f[2]! % (MAX_SIZE + 9);
        const immutable = (mode & 1) !== 0;
        const perms = Math.floor(mode / 2) % 7; // 6: an invalid list
        let want: number = S.OK;
        if (sz === 0) want = S.OUT_OF_RANGE;
        else if (initLen > sz) want = S.OUT_OF_BOUNDS;
        else if (c.isolated) want = S.ACCESS_DENIED;
        else if (perms === 6) want = S.INVALID_ARGUMENT;
        else if (!R.quotaOk(c.tenant, sz)) want = S.QUOTA_EXCEEDED;
        if (R.H.length + 2 > MAX_H) break;
        for (let k = 0; k < initLen; k++) io[k] = (mode + k * 7) & 0xff;
        const list = perms === 6 ? "julia=rw" : PERMS[perms]!;
        log?.(`op ${i}: share_create ctx ${ctx} size ${sz} init ${initLen}${immutable ? " immutable" : ""} perms ${perms === 6 ? "bad" : list === null ? "NULL" : list}`);
        let obj = 0n, r0 = 0n;
        if (list === null) {
          // No permission list at all (NULL): the wrapper would pass "", so the raw call.
          const st = native().aether_devpool_share_create(dp.ptr, ctx, BigInt(sz), immutable ? 1 : 0, null, initLen ? io : null, BigInt(initLen), out, ref) as number;
          R.expect({ st, msg: st ? String(native().aether_last_error()) : "" }, want, label);
          obj = out[0]!;
          r0 = ref[0]!;
        } else {
          R.expect(statusOf(() => ({ object: obj, ref: r0 } = dc.share(sz, { immutable, perms: list, init: io.subarray(0, initLen) }))), want, label);
        }
        if (want !== S.OK) break;
        const ob = R.newHandle(K_OBJECT, obj, ctx, sz);
        ob.data.set(io.subarray(0, initLen));
        ob.known.fill(1); // init, then zeros
        ob.immutable = immutable;
        ob.perms = perms;
        ob.refcount = 1;
        ob.ownerRef = immutable ? 0n : r0;
        const rf = R.newHandle(K_REF, r0, ctx, 0);
        rf.obj = ob;
        rf.access = immutable ? ACCESS_READ : ACCESS_READ_WRITE;
        R.usedBytes[c.tenant]! += chargeOf(sz);
        R.usedCount[c.tenant]!++;
        break;
      }
      case 9: { // acquire
        const v = R.pickHandle(f[0]!, f[1]!);
        const a = f[2]!;
        const access = a % 5 === 4 ? 2 : a & 1 ? ACCESS_READ_WRITE : ACCESS_READ;
        let want = access === 2 ? S.INVALID_ARGUMENT : R.resolveObject(v);
        if (want === S.OK) {
          const o = R.find(v)!;
          const creator = C.find((k) => k.id === o.ctx)!;
          const may = R.mayAccess(o, c);
          if (c.isolated) want = S.ACCESS_DENIED;
          else if (creator.tenant !== c.tenant) want = S.ACCESS_DENIED;
          else if (access === ACCESS_READ_WRITE && o.immutable) want = S.READ_ONLY;
          else if ((may & access) !== access) want = S.ACCESS_DENIED;
        }
        if (R.H.length === MAX_H) break;
        log?.(`op ${i}: acquire ${hex(v)} access ${access} from ctx ${ctx}`);
        let r = 0n;
        if (access === 2) {
          // Neither read (1) nor read-write (3): the wrapper's "r" | "rw" cannot say it, so the raw call.
          const st = native().aether_devpool_share_acquire(dp.ptr, ctx, v, access, out) as number;
          R.expect({ st, msg: st ? String(native().aether_last_error()) : "" }, want, label);
          r = out[0]!;
        } else {
          R.expect(statusOf(() => (r = dc.acquire(v, access === ACCESS_READ_WRITE ? "rw" : "r"))), want, label);
        }
        if (want !== S.OK) break;
        const o = R.find(v)!;
        const rf = R.newHandle(K_REF, r, ctx, 0);
        rf.obj = o;
        rf.access = access;
        o.refcount++;
        if (access === ACCESS_READ_WRITE) o.ownerRef = r;
        break;
      }
      case 10: { // release
        const v = R.pickHandle(f[0]!, f[1]!);
        const want = R.resolveRef(v, ctx);
        log?.(`op ${i}: release ${hex(v)} from ctx ${ctx}`);
        R.expect(statusOf(() => dc.release(v)), want, label);
        if (want !== S.OK) break;
        const r = R.find(v)!;
        const o = r.obj!;
        r.live = false;
        if (o.ownerRef === v) o.ownerRef = 0n;
        if (--o.refcount === 0) R.objectGone(o);
        break;
      }
      default: { // share_info, leaks, stats, trim
        const v = R.pickHandle(f[0]!, f[1]!);
        const want = R.resolveObject(v);
        let si: ReturnType<DevicePools["shareInfo"]> | undefined;
        R.expect(statusOf(() => (si = dp.shareInfo(v))), want, "share_info");
        if (want === S.OK) {
          const o = R.find(v)!;
          fuzzAssert(
            si!.size === o.size && si!.refcount === o.refcount && si!.ownerRef === o.ownerRef && si!.creatorCtx === o.ctx,
            `share_info: size ${si!.size} refcount ${si!.refcount} owner ${hex(si!.ownerRef)}, the model ${o.size} ${o.refcount} ${hex(o.ownerRef)}`,
          );
        }
        const live = R.H.filter((h) => (h.kind === K_ALLOC || h.kind === K_OBJECT) && h.live).length;
        const leaks = dp.checkLeaks(0).total;
        fuzzAssert(leaks === live, `check_leaks: ${leaks}, the model ${live}`);
        let liveCount = -1;
        R.expect(statusOf(() => (liveCount = dp.stats().liveCount)), S.OK, "stats");
        fuzzAssert(liveCount === live, `stats: live_count ${liveCount}, the model ${live}`);
        const tr = statusOf(() => dc.trim());
        fuzzAssert(tr.st === S.OK, `trim: ${errName(tr.st)} (${tr.msg})`);
        break;
      }
    }
  });
}

function describe(o: DevpoolOp): string {
  return `${OP_NAMES[o.code % 12]} ctx#${o.ctx} [${o.f.join(" ")}]`;
}

export const devpoolTarget: BuiltinTarget<DevpoolOp> = {
  name: "devpool",
  description: "the device pools (host backend) through the FFI: multi-tenant programs with forged and stale handles, quotas and shared objects against fuzz/devpool.c's model",
  maxLen: 2048,
  decode(data) {
    const p = new Producer(data);
    const setup = p.u8();
    for (let i = 0, n = 1 + ((setup >> 2) % MAX_CTX); i < n; i++) p.u8();
    const head = data.slice(0, Math.min(p.pos, data.length));
    const ops: DevpoolOp[] = [];
    while (!p.empty && ops.length < MAX_OPS) {
      const code = p.u8();
      const ctx = p.u8();
      ops.push({ code, ctx, f: FIELDS[code % 12]!.map((w) => Number(p.bytesLE(w))) });
    }
    return { head, ops };
  },
  encode(prog) {
    const e = new Encoder().raw(prog.head);
    for (const o of prog.ops) {
      e.u8(o.code).u8(o.ctx);
      FIELDS[o.code % 12]!.forEach((w, k) => e.bytesLE(BigInt(o.f[k] ?? 0), w));
    }
    return e.finish();
  },
  simplify(o) {
    const out: DevpoolOp[] = [];
    if (o.ctx > 0) out.push({ ...o, ctx: 0 });
    o.f.forEach((v, k) => {
      if (v > 0) out.push({ ...o, f: o.f.map((x, j) => (j === k ? x >> 1 : x)) });
    });
    return out;
  },
  describe,
  run,
};
