// Device memory pools through the FFI, as users call them: handles and every refusal, bounds, quotas, wipes,
// isolation of tenants' bytes, growth and return of slabs, compaction, shared objects and ownership, stats,
// leaks and the in-memory audit ring. On the host backend by default; AETHER_TEST_DEVICE=hip|cuda runs it on a
// GPU (the few tests that read device memory through a host pointer, or rely on in-place growth, are host-only).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { errorCode } from "../cli/native/ffi.ts";
import { benchDevpoolLive, DevicePools, type DeviceContext } from "../cli/native/devpool.ts";

const BACKEND = (process.env.AETHER_TEST_DEVICE ?? "host") as "host" | "hip" | "cuda";
const onHost = BACKEND === "host";
const create = (opts: Parameters<typeof DevicePools.create>[0] = {}) =>
  DevicePools.create({ backend: BACKEND, ignoreEnvAudit: true, ...opts });

let pools: DevicePools;
beforeAll(() => {
  pools = create({ verifyWipe: true });
});
afterAll(() => pools.destroy());


/** Raw bytes at a device address (host backend: a host pointer), for looking behind the API's back. */
function raw(address: bigint, len: number): Uint8Array {
  return new Uint8Array(toArrayBuffer(Number(address) as unknown as Pointer, 0, len));
}

let unique = 0;
const ctx = (level: "public" | "confidential" | "secret" = "public", tenant = `t${++unique}`, runtime = "rust") =>
  pools.context(tenant, runtime, level);

describe("handles", () => {
  test("alloc gives distinct handles, sizes are kept, addresses are 256-byte aligned", () => {
    const c = ctx();
    const hs = [1, 255, 256, 257, 4096, 8193, 100_000, 1 << 20].map((n) => ({ n, h: c.alloc(n) }));
    expect(new Set(hs.map((x) => x.h)).size).toBe(hs.length);
    for (const { n, h } of hs) {
      expect(c.size(h)).toBe(n);
      expect(c.address(h) % 256n).toBe(0n);
    }
    for (const { h } of hs) c.free(h);
  });

  test("write, read and fill round-trip, at any offset inside", () => {
    const c = ctx();
    const h = c.alloc(10_000);
    const data = new Uint8Array(10_000).map((_, i) => (i * 7) & 0xff);
    c.write(h, 0, data);
    expect(c.read(h, 0, 10_000)).toEqual(data);
    c.fill(h, 100, 0xee, 50);
    const back = c.read(h, 90, 70);
    expect([...back.subarray(0, 10)]).toEqual([...data.subarray(90, 100)]);
    expect(back.subarray(10, 60).every((b) => b === 0xee)).toBe(true);
    expect([...back.subarray(60)]).toEqual([...data.subarray(150, 160)]);
    c.write(h, 9_999, new Uint8Array([42]));
    expect(c.read(h, 9_999, 1)[0]).toBe(42);
    c.write(h, 10_000, new Uint8Array(0)); // an empty range at the very end is inside
    c.free(h);
  });

  test("zeroed allocation on request", () => {
    const c = ctx();
    const h = c.alloc(3000);
    c.fill(h, 0, 0x77, 3000);
    c.free(h);
    const z = c.alloc(3000, { zero: true });
    expect(c.read(z, 0, 3000).every((b) => b === 0)).toBe(true);
    c.free(z);
  });
});

describe("refusals, each with its own status", () => {
  test("use after free and double free are stale", () => {
    const c = ctx();
    const h = c.alloc(512);
    c.free(h);
    expect(errorCode(() => c.read(h, 0, 1))).toBe("AETHER_ERR_STALE_HANDLE");
    expect(errorCode(() => c.write(h, 0, new Uint8Array(1)))).toBe("AETHER_ERR_STALE_HANDLE");
    expect(errorCode(() => c.fill(h, 0, 1, 1))).toBe("AETHER_ERR_STALE_HANDLE");
    expect(errorCode(() => c.size(h))).toBe("AETHER_ERR_STALE_HANDLE");
    expect(errorCode(() => c.address(h))).toBe("AETHER_ERR_STALE_HANDLE");
    expect(errorCode(() => c.free(h))).toBe("AETHER_ERR_STALE_HANDLE");
  });

  test("a handle stays stale after its slot is reused (generations)", () => {
    const c = ctx();
    const h = c.alloc(512);
    c.free(h);
    const again = [c.alloc(512), c.alloc(512), c.alloc(512)];
    expect(again).not.toContain(h);
    expect(errorCode(() => c.read(h, 0, 1))).toBe("AETHER_ERR_STALE_HANDLE");
    for (const x of again) c.free(x);
  });

  test("made-up handles are forged, never stale and never accepted", () => {
    const c = ctx();
    const h = c.alloc(512);
    const forged = [0n, 1n, 0xffffffffffffffffn, h ^ 1n, h ^ 0x4000n, h + (1n << 38n), h & ~(3n << 62n), h ^ (1n << 14n) ^ 5n];
    for (const f of forged) {
      expect(errorCode(() => c.read(f, 0, 1))).toBe("AETHER_ERR_FORGED_HANDLE");
      expect(errorCode(() => c.free(f))).toBe("AETHER_ERR_FORGED_HANDLE");
    }
    let rng = 12345n;
    for (let i = 0; i < 2000; i++) {
      rng = (rng * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
      if (rng === h) continue;
      expect(["AETHER_ERR_FORGED_HANDLE", "AETHER_ERR_INVALID_ARGUMENT"]).toContain(errorCode(() => c.size(rng)));
    }
    expect(c.size(h)).toBe(512);
    c.free(h);
  });

  test("another tenant's handle is denied for every operation, and nothing moves through it", () => {
    const a = ctx("secret");
    const b = ctx();
    const h = a.alloc(1024);
    const secret = new Uint8Array(1024).fill(0x5a);
    a.write(h, 0, secret);
    expect(errorCode(() => b.read(h, 0, 16))).toBe("AETHER_ERR_ACCESS_DENIED");
    expect(errorCode(() => b.write(h, 0, new Uint8Array(16).fill(1)))).toBe("AETHER_ERR_ACCESS_DENIED");
    expect(errorCode(() => b.fill(h, 0, 2, 16))).toBe("AETHER_ERR_ACCESS_DENIED");
    expect(errorCode(() => b.size(h))).toBe("AETHER_ERR_ACCESS_DENIED");
    expect(errorCode(() => b.address(h))).toBe("AETHER_ERR_ACCESS_DENIED");
    expect(errorCode(() => b.free(h))).toBe("AETHER_ERR_ACCESS_DENIED");
    expect(a.read(h, 0, 1024)).toEqual(secret); // untouched, and still live
    a.free(h);
    // Freed, it is still not b's business: denied, not "stale" (no information about a's handles).
    expect(errorCode(() => b.read(h, 0, 16))).toBe("AETHER_ERR_ACCESS_DENIED");
  });

  test("a refused read leaves the caller's buffer alone", () => {
    const a = ctx();
    const b = ctx();
    const h = a.alloc(64);
    a.fill(h, 0, 0x11, 64);
    const dst = new Uint8Array(64).fill(0x55);
    const { native } = require("../cli/native/ffi.ts");
    const status = native().aether_devpool_read(pools.ptr, b.id, h, 0n, dst, 64n);
    expect(status).toBe(-23);
    expect(dst.every((x) => x === 0x55)).toBe(true);
    a.free(h);
  });

  test("another context of the same tenant is denied too (share it as an object instead)", () => {
    const a = pools.context("samecorp", "rust", "public");
    const b = pools.context("samecorp", "julia", "public");
    const h = a.alloc(64);
    expect(errorCode(() => b.read(h, 0, 1))).toBe("AETHER_ERR_ACCESS_DENIED");
    a.free(h);
  });

  test("sizes, offsets and lengths that are not whole numbers >= 0 are refused by the wrapper as the C API would", () => {
    const c = ctx();
    const h = c.alloc(64);
    for (const bad of [1.5, -1, NaN, Infinity]) {
      expect(errorCode(() => c.alloc(bad))).toBe("AETHER_ERR_INVALID_ARGUMENT");
      expect(errorCode(() => c.read(h, bad, 1))).toBe("AETHER_ERR_INVALID_ARGUMENT");
      expect(errorCode(() => c.fill(h, 0, 1, bad))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    }
    // a length no JavaScript buffer could hold is out of bounds, not a RangeError from new Uint8Array
    expect(errorCode(() => c.read(h, 0, 2 ** 40))).toBe("AETHER_ERR_OUT_OF_BOUNDS");
    c.free(h);
  });

  test("bounds: every range outside the allocation is refused and nothing is copied", () => {
    const c = ctx();
    const h = c.alloc(100);
    c.fill(h, 0, 9, 100);
    for (const [off, len] of [[0, 101], [1, 100], [100, 1], [101, 0], [2 ** 52, 1]] as const)
      expect(errorCode(() => c.read(h, off, len))).toBe("AETHER_ERR_OUT_OF_BOUNDS");
    for (const [off, len] of [[0, 100], [99, 1], [100, 0], [0, 0]] as const) expect(errorCode(() => c.read(h, off, len))).toBe("ok");
    expect(errorCode(() => c.write(h, 99, new Uint8Array(2)))).toBe("AETHER_ERR_OUT_OF_BOUNDS");
    expect(errorCode(() => c.fill(h, 0, 1, 101))).toBe("AETHER_ERR_OUT_OF_BOUNDS");
    const { native } = require("../cli/native/ffi.ts");
    // offset + len would wrap around 2^64: still out of bounds
    expect(native().aether_devpool_fill(pools.ptr, c.id, h, 0xffffffffffffff00n, 1, 0x200n)).toBe(-26);
    expect(native().aether_devpool_fill(pools.ptr, c.id, h, 50n, 1, 0xffffffffffffffffn)).toBe(-26);
    expect(c.read(h, 0, 100).every((x) => x === 9)).toBe(true);
    c.free(h);
  });

  test("bad arguments", () => {
    const c = ctx();
    expect(errorCode(() => c.alloc(0))).toBe("AETHER_ERR_OUT_OF_RANGE");
    expect(errorCode(() => c.alloc(2 ** 40 + 1))).toBe("AETHER_ERR_OUT_OF_RANGE");
    expect(errorCode(() => pools.context("", "rust"))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    expect(errorCode(() => pools.context("has space", "rust"))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    expect(errorCode(() => pools.context("x".repeat(64), "rust"))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    expect(errorCode(() => pools.context("ok", "r".repeat(32)))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    expect(errorCode(() => pools.context("ok", "rust", "top" as never))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    expect(errorCode(() => pools.contextById(999_999))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    expect(errorCode(() => c.fill(c.alloc(8), 0, 256, 1))).toBe("AETHER_ERR_OUT_OF_RANGE");
  });

  test("quotas on bytes and on count, across the tenant's contexts", () => {
    const tenant = `quota${++unique}`;
    pools.setQuota(tenant, { bytes: 4096, count: 3 });
    const a = pools.context(tenant, "rust");
    const b = pools.context(tenant, "julia");
    const h1 = a.alloc(2048);
    const h2 = b.alloc(1000); // 1024 with rounding
    expect(errorCode(() => b.alloc(1025))).toBe("AETHER_ERR_QUOTA_EXCEEDED"); // 2048 + 1024 + 1280 > 4096
    const h3 = b.alloc(1024);
    expect(errorCode(() => a.alloc(1))).toBe("AETHER_ERR_QUOTA_EXCEEDED"); // bytes full and count full
    b.free(h3);
    pools.setQuota(tenant, { bytes: 0, count: 2 });
    expect(errorCode(() => a.alloc(1))).toBe("AETHER_ERR_QUOTA_EXCEEDED"); // count only
    a.free(h1);
    const h4 = a.alloc(1 << 20); // bytes unlimited now
    expect(pools.tenantStats(tenant).quotaHits).toBe(3);
    a.free(h4);
    b.free(h2);
    pools.setQuota(tenant, {});
  });

  test("every refusal is audited with its status", () => {
    const a = ctx();
    const b = ctx();
    const seq = pools.auditSeq();
    const h = a.alloc(64);
    errorCode(() => b.read(h, 0, 1));
    errorCode(() => a.read(h, 64, 1));
    a.free(h);
    errorCode(() => a.free(h));
    errorCode(() => a.free(h ^ 2n));
    const recs = pools.audit(seq);
    const mine = recs.filter((r) => r.ctx === a.id || r.ctx === b.id).map((r) => `${r.op}:${r.result}`);
    expect(mine).toEqual([
      "alloc:ok",
      "read:AETHER_ERR_ACCESS_DENIED",
      "read:AETHER_ERR_OUT_OF_BOUNDS",
      "free:ok",
      "free:AETHER_ERR_STALE_HANDLE",
      "free:AETHER_ERR_FORGED_HANDLE",
    ]);
    expect(recs.find((r) => r.result === "AETHER_ERR_ACCESS_DENIED")!.ctx).toBe(b.id);
    expect(a.stats().denials + b.stats().denials).toBe(4);
  });
});

describe("secure wipe", () => {
  // The address pins the allocation, so the freed range can be inspected where it was.
  function afterFree(level: "public" | "confidential" | "secret"): Uint8Array {
    const c = ctx(level);
    const h = c.alloc(4096);
    const at = c.address(h);
    c.fill(h, 0, 0xc3, 4096);
    c.free(h);
    return raw(at, 4096).slice();
  }

  test.if(onHost)("secret and confidential ranges are zero after free; public ones keep their bytes", () => {
    expect(afterFree("secret").every((b) => b === 0)).toBe(true);
    expect(afterFree("confidential").every((b) => b === 0)).toBe(true);
    expect(afterFree("public").every((b) => b === 0xc3)).toBe(true);
  });

  test("secret wipes run four passes, confidential one, and are audited", () => {
    const s = ctx("secret");
    const c = ctx("confidential");
    const seq = pools.auditSeq();
    s.free(s.alloc(1000));
    c.free(c.alloc(1000));
    expect(s.stats().wipedBytes).toBe(4 * 1024);
    expect(c.stats().wipedBytes).toBe(1024);
    const wipes = pools.audit(seq).filter((r) => r.op === "wipe");
    expect(wipes.map((r) => [r.ctx, r.size, r.result])).toEqual([
      [s.id, 1024, "ok"],
      [c.id, 1024, "ok"],
    ]);
  });

  test.if(onHost)("an isolated context's slab is fenced by an inaccessible page; a plain one is not", () => {
    // /proc/self/maps: the mapping holding the page just before the slab's first block
    const around = (at: bigint) => {
      const a = at - 1n;
      for (const line of require("node:fs").readFileSync("/proc/self/maps", "utf8").split("\n")) {
        const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/.exec(line);
        if (m && BigInt(`0x${m[1]}`) <= a && a < BigInt(`0x${m[2]}`)) return { perms: m[3], start: BigInt(`0x${m[1]}`) };
      }
      return null;
    };
    const iso = pools.context(`iso${++unique}`, "rust", "public", { isolated: true });
    const h = iso.alloc(4096);
    const before = around(iso.address(h));
    expect(before?.perms).toBe("---p");
    expect(before!.start).toBe(iso.address(h) - 4096n); // exactly one guard page, ours
    iso.free(h);
    const plain = ctx();
    const p = plain.alloc(4096);
    const b2 = around(plain.address(p));
    expect(b2 === null || b2.start !== plain.address(p) - 4096n || b2.perms !== "---p").toBe(true);
    plain.free(p);
  });

  test("memory handed to a new allocation never carries another tenant's bytes", () => {
    // Tenant A (public: no wipe) fills many blocks of many sizes. While they live, B's allocations never
    // overlap them (pools never share a slab). Then A frees them and gives its slabs back, and B allocates the
    // same shapes again: it must see only zeros, never A's pattern.
    const a = ctx("public");
    const b = ctx("public");
    const sizes = [256, 700, 4096, 8192, 9000, 65536, 300_000, 1 << 20];
    const ha = [];
    for (let i = 0; i < 64; i++) {
      const n = sizes[i % sizes.length]!;
      const h = a.alloc(n);
      a.fill(h, 0, 0xab, n);
      ha.push({ h, at: a.address(h), n });
    }
    const hb = [];
    for (let i = 0; i < 64; i++) {
      const n = sizes[i % sizes.length]!;
      const h = b.alloc(n);
      const at = b.address(h);
      for (const x of ha) expect(at + BigInt(n) <= x.at || at >= x.at + BigInt(x.n)).toBe(true);
      hb.push(h);
    }
    for (const h of hb) b.free(h);
    for (const { h } of ha) a.free(h);
    a.trim();
    for (let i = 0; i < 64; i++) {
      const n = sizes[i % sizes.length]!;
      const h = b.alloc(n);
      expect(b.read(h, 0, n).some((x) => x === 0xab)).toBe(false);
      b.free(h);
    }
  });
});

describe("growth, return of slabs, compaction", () => {
  test.if(onHost)("a pool grows on demand and gives memory back when it empties beyond retain", () => {
    const p = create({ retainBytes: 1 << 20 });
    try {
      const c = p.context("grow", "rust");
      const hs = [];
      for (let i = 0; i < 200; i++) hs.push(c.alloc(256 << 10));
      const s = c.stats();
      expect(s.reservedBytes).toBeGreaterThanOrEqual(200 * (256 << 10));
      expect(s.reservedBytes).toBeLessThan(200 * (256 << 10) * 1.1);
      expect(s.liveCount).toBe(200);
      for (const h of hs) c.free(h);
      const after = c.stats();
      expect(after.reservedBytes).toBeLessThanOrEqual(1 << 20);
      expect(after.peakReservedBytes).toBe(s.reservedBytes);
      expect(c.trim()).toBe(after.reservedBytes);
      expect(c.stats().reservedBytes).toBe(0);
    } finally {
      p.destroy();
    }
  });

  test("compaction moves unpinned blocks with their contents, and never a pinned one", () => {
    const p = create();
    try {
      const c = p.context("compact", "rust");
      // Interleave 128 KiB blocks, pin a few, free every other one: the free space is all in 128 KiB holes.
      const blocks = [];
      for (let i = 0; i < 400; i++) {
        const h = c.alloc(128 << 10);
        c.fill(h, 0, i & 0xff, 128 << 10);
        blocks.push({ h, i });
      }
      const pinned = new Map(blocks.filter((b) => b.i % 50 === 3).map((b) => [b.h, c.address(b.h)]));
      for (const b of blocks) if (b.i % 2 === 0) c.free(b.h);
      const live = blocks.filter((b) => b.i % 2 === 1);
      const before = c.stats();
      // Keep allocating 1 MiB: nothing fits in a 128 KiB hole, and the pool is well over its budget.
      const big = [];
      for (let k = 0; k < 20; k++) big.push(c.alloc(1 << 20));
      const after = c.stats();
      expect(after.compactions).toBeGreaterThan(before.compactions);
      expect(after.movedBytes).toBeGreaterThan(0);
      expect(after.reservedBytes).toBeLessThan(before.reservedBytes + 20 * (1 << 20));
      for (const b of live) {
        const bytes = c.read(b.h, 0, 128 << 10);
        expect(bytes[0]).toBe(b.i & 0xff);
        expect(bytes.every((x) => x === (b.i & 0xff))).toBe(true);
      }
      for (const [h, at] of pinned) expect(c.address(h)).toBe(at);
      for (const h of big) c.free(h);
      for (const b of live) c.free(b.h);
    } finally {
      p.destroy();
    }
  });

  test("confidential and secret pools never move bytes (a moved copy would escape the wipe)", () => {
    const p = create();
    try {
      const c = p.context("nomove", "rust", "confidential");
      const hs = [];
      for (let i = 0; i < 200; i++) hs.push(c.alloc(128 << 10));
      for (let i = 0; i < 200; i += 2) c.free(hs[i]!);
      for (let k = 0; k < 10; k++) c.alloc(1 << 20);
      expect(c.stats().compactions).toBe(0);
    } finally {
      p.destroy();
    }
  });

  test("one million live allocations in one pool", () => {
    const p = create({ auditRing: 1 << 16 });
    try {
      const c = p.context("million", "rust");
      p.setQuota("million", { bytes: 2 ** 40, count: 2_000_000 });
      const r = benchDevpoolLive(c, 256, 1_000_000);
      expect(r.alloc.ops).toBe(1_000_000);
      expect(r.free.ops).toBe(1_000_000);
      const s = c.stats();
      expect(s.peakLiveCount).toBe(1_000_000);
      expect(s.peakReservedBytes).toBeLessThan(1_000_000 * 256 * 1.1);
      expect(s.liveCount).toBe(0);
      expect(p.checkLeaks().total).toBe(0);
    } finally {
      p.destroy();
    }
  });
});

describe("shared objects", () => {
  const tenant = "sharing";
  let rust: DeviceContext, julia: DeviceContext, elixir: DeviceContext, zig: DeviceContext;
  beforeAll(() => {
    rust = pools.context(tenant, "rust", "confidential");
    julia = pools.context(tenant, "julia");
    elixir = pools.context(tenant, "elixir");
    zig = pools.context(tenant, "zig");
  });

  test("read-write acquire transfers ownership: the old owner reads but cannot write", () => {
    const { object, ref } = rust.share(100, { perms: { julia: "rw", elixir: "r" }, init: new Uint8Array([1, 2, 3]) });
    expect([...rust.read(ref, 0, 4)]).toEqual([1, 2, 3, 0]);
    rust.write(ref, 3, new Uint8Array([4]));
    const j = julia.acquire(object, "rw");
    let info = pools.shareInfo(object);
    expect(info.refcount).toBe(2);
    expect(info.ownerCtx).toBe(julia.id);
    expect(info.ownerRef).toBe(j);
    expect(info.transfers).toBe(1);
    expect(errorCode(() => rust.write(ref, 0, new Uint8Array([9])))).toBe("AETHER_ERR_NOT_OWNER");
    expect(errorCode(() => rust.fill(ref, 0, 9, 1))).toBe("AETHER_ERR_NOT_OWNER");
    expect([...rust.read(ref, 0, 4)]).toEqual([1, 2, 3, 4]);
    julia.write(j, 0, new Uint8Array([7]));
    expect(rust.read(ref, 0, 1)[0]).toBe(7);
    // and back
    const r2 = rust.acquire(object, "rw");
    expect(errorCode(() => julia.write(j, 0, new Uint8Array([8])))).toBe("AETHER_ERR_NOT_OWNER");
    rust.write(r2, 0, new Uint8Array([6]));
    expect(julia.read(j, 0, 1)[0]).toBe(6);
    expect(pools.shareInfo(object).transfers).toBe(2);
    // read-only reference by elixir; a write through it is refused
    const e = elixir.acquire(object, "r");
    expect(errorCode(() => elixir.write(e, 0, new Uint8Array(1)))).toBe("AETHER_ERR_READ_ONLY");
    expect(pools.shareInfo(object).refcount).toBe(4);
    for (const [c, r] of [[rust, ref], [julia, j], [rust, r2]] as const) c.release(r);
    info = pools.shareInfo(object);
    expect(info.refcount).toBe(1);
    expect(info.ownerRef).toBe(0n); // the owner released: nobody writes until someone acquires rw
    elixir.release(e);
    expect(errorCode(() => pools.shareInfo(object))).toBe("AETHER_ERR_STALE_HANDLE");
  });

  test("a released reference is stale whoever holds its slot now (found by fuzzing: it was ACCESS_DENIED)", () => {
    const { object, ref } = rust.share(64, { perms: "julia:rw" });
    const j = julia.acquire(object, "r");
    julia.release(j);
    // the next acquire, by another context, may take the released reference's slot
    const r2 = rust.acquire(object, "r");
    for (const use of [() => julia.read(j, 0, 1), () => julia.release(j)]) expect(errorCode(use)).toBe("AETHER_ERR_STALE_HANDLE");
    const j2 = julia.acquire(object, "r");
    expect(errorCode(() => rust.read(j2, 0, 1))).toBe("AETHER_ERR_ACCESS_DENIED"); // live, of another context
    for (const [c, r] of [[julia, j2], [rust, r2], [rust, ref]] as const) c.release(r);
  });

  test("permissions per runtime tag, tenancy and isolation are enforced", () => {
    const { object, ref } = rust.share(64, { perms: "julia:r" });
    expect(errorCode(() => julia.acquire(object, "rw"))).toBe("AETHER_ERR_ACCESS_DENIED"); // read only for julia
    expect(errorCode(() => elixir.acquire(object, "r"))).toBe("AETHER_ERR_ACCESS_DENIED"); // not listed
    const other = pools.context("someone-else", "julia");
    expect(errorCode(() => other.acquire(object, "r"))).toBe("AETHER_ERR_ACCESS_DENIED"); // another tenant
    const iso = pools.context(tenant, "julia", "public", { isolated: true });
    expect(errorCode(() => iso.acquire(object, "r"))).toBe("AETHER_ERR_ACCESS_DENIED");
    expect(errorCode(() => iso.share(64))).toBe("AETHER_ERR_ACCESS_DENIED");
    const j = julia.acquire(object, "r");
    expect(errorCode(() => rust.release(j))).toBe("AETHER_ERR_ACCESS_DENIED"); // not rust's reference
    expect(errorCode(() => julia.read(object, 0, 1))).toBe("AETHER_ERR_INVALID_ARGUMENT"); // an id is not a reference
    julia.release(j);
    expect(errorCode(() => julia.release(j))).toBe("AETHER_ERR_STALE_HANDLE");
    expect(errorCode(() => julia.read(j, 0, 1))).toBe("AETHER_ERR_STALE_HANDLE");
    const anyone = rust.share(64, { perms: "*:r" });
    const z = zig.acquire(anyone.object, "r");
    expect(errorCode(() => zig.acquire(anyone.object, "rw"))).toBe("AETHER_ERR_ACCESS_DENIED");
    zig.release(z);
    expect(errorCode(() => rust.share(8, { perms: "julia:x" }))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    expect(errorCode(() => rust.share(8, { perms: "bad name:r" }))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    expect(errorCode(() => rust.share(8, { init: new Uint8Array(9) }))).toBe("AETHER_ERR_OUT_OF_BOUNDS");
    rust.release(ref);
    // While its creator's reference is held, the object is live, and listed as such.
    const listed = () => pools.checkLeaks(1000).leaks.filter((l) => l.kind === "shared-object" && l.handle === anyone.object);
    expect(listed()).toHaveLength(1);
    rust.release(anyone.ref);
    expect(listed()).toHaveLength(0);
  });

  test("immutable objects: initial contents only, no writer, read-write acquire refused", () => {
    const { object, ref } = rust.share(16, { immutable: true, perms: "julia:rw", init: new TextEncoder().encode("constant") });
    expect(errorCode(() => rust.write(ref, 0, new Uint8Array(1)))).toBe("AETHER_ERR_READ_ONLY");
    expect(errorCode(() => julia.acquire(object, "rw"))).toBe("AETHER_ERR_READ_ONLY");
    const j = julia.acquire(object, "r");
    expect(new TextDecoder().decode(julia.read(j, 0, 8))).toBe("constant");
    expect(pools.shareInfo(object).immutable).toBe(true);
    expect(pools.shareInfo(object).ownerRef).toBe(0n);
    julia.release(j);
    rust.release(ref);
  });

  test.if(onHost)("the last release wipes (by the creator's level) and frees", () => {
    const { object, ref } = rust.share(512, { perms: "julia:r", init: new Uint8Array(512).fill(0xde) });
    const at = rust.address(ref);
    const j = julia.acquire(object, "r");
    rust.release(ref);
    expect(raw(at, 512).every((b) => b === 0xde)).toBe(true); // still referenced: intact
    julia.release(j);
    expect(raw(at, 512).every((b) => b === 0)).toBe(true); // confidential creator: zeroed
    expect(pools.checkLeaks(1000).leaks.some((l) => l.handle === object)).toBe(false);
  });
});

describe("stats and leaks", () => {
  test("per pool and per tenant: live, reserved, peak, fragmentation = 1 - largest/total free", () => {
    const p = create();
    try {
      const a = p.context("st", "rust");
      const b = p.context("st", "julia");
      const hs = [];
      for (let i = 0; i < 10; i++) hs.push(a.alloc(100_000));
      const hb = b.alloc(5000);
      let s = a.stats();
      expect(s.liveCount).toBe(10);
      expect(s.liveBytes).toBe(1_000_000);
      expect(s.peakLiveBytes).toBe(1_000_000);
      for (let i = 0; i < 10; i += 2) a.free(hs[i]!);
      s = a.stats();
      expect(s.liveCount).toBe(5);
      expect(s.liveBytes).toBe(500_000);
      expect(s.peakLiveBytes).toBe(1_000_000);
      expect(s.totalFree).toBe(s.reservedBytes - 5 * 100_096);
      expect(s.largestFree).toBeGreaterThan(0);
      expect(s.largestFree).toBeLessThanOrEqual(s.totalFree);
      expect(s.fragmentation).toBeCloseTo(1 - s.largestFree / s.totalFree, 12);
      expect(s.fragmentation).toBeGreaterThan(0); // holes between live blocks
      const t = p.tenantStats("st");
      expect(t.contexts).toBe(2);
      expect(t.liveCount).toBe(6);
      expect(t.liveBytes).toBe(505_000);
      expect(errorCode(() => p.tenantStats("nobody"))).toBe("AETHER_ERR_INVALID_ARGUMENT");
      const leaks = p.checkLeaks();
      expect(leaks.total).toBe(6);
      expect(leaks.leaks.filter((l) => l.ctx === a.id).map((l) => l.size)).toEqual([100_000, 100_000, 100_000, 100_000, 100_000]);
      expect(leaks.leaks.find((l) => l.ctx === b.id)).toMatchObject({ size: 5000, kind: "allocation", handle: hb });
      for (let i = 1; i < 10; i += 2) a.free(hs[i]!);
      b.free(hb);
      expect(p.checkLeaks().total).toBe(0);
      expect(p.stats().liveCount).toBe(0);
    } finally {
      p.destroy();
    }
  });
});

describe("audit ring", () => {
  test("every kind of operation is recorded, in order, with tenant context, size and result", () => {
    const p = create({ auditRing: 64 });
    try {
      const c = p.context("ring", "rust", "secret");
      const j = p.context("ring", "julia");
      const h = c.alloc(300);
      c.write(h, 0, new Uint8Array(10));
      c.read(h, 0, 10);
      c.fill(h, 0, 1, 300);
      c.size(h);
      c.address(h);
      c.free(h);
      const { object, ref } = c.share(64, { perms: "julia:rw" });
      const jr = j.acquire(object, "rw");
      j.release(jr);
      c.release(ref);
      c.trim();
      p.setQuota("ring", { count: 500 });
      const ops = p.audit().map((r) => r.op);
      expect(ops).toEqual([
        "context", "context", "alloc", "write", "read", "fill", "size", "address", "wipe", "free", "share_create",
        "acquire", "transfer", "acquire", "release", "release", "wipe", "free", "trim", "quota",
      ]);
      const seqs = p.audit().map((r) => r.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
      // The ring keeps the newest 64: older records are gone, the rest still in order.
      for (let i = 0; i < 100; i++) c.size(c.alloc(8));
      const kept = p.audit();
      expect(kept).toHaveLength(64);
      expect(kept[63]!.seq).toBe(p.auditSeq());
      expect(kept[0]!.seq).toBe(p.auditSeq() - 63);
      expect(p.audit(p.auditSeq() - 3)).toHaveLength(3);
    } finally {
      p.destroy();
    }
  });
});
