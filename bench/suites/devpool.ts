// devpool: the device memory pools (host backend unless AETHER_DEVICE says otherwise), with the audit ring on
// and a quota set (large enough never to refuse): what a tenant pays.
//   pair/<size>/{pool,raw}   alloc+free pair timed in C, against a raw backend allocation per request (host:
//                            mmap + munmap), the slow path pools exist to avoid
//   bun/256B/{pool,raw}      one pair from Bun through the FFI (batches of 16), against mmap + munmap called
//                            through bun:ffi the same way
//   single/256B/pool         one pair from Bun timed alone (the timer included: an upper bound), for the
//                            cross-language latency targets
//   live/<n>/{alloc,free}    n allocations live at once in one pool, then all freed in a shuffled order
import { dlopen, FFIType } from "bun:ffi";
import { benchDevpool, benchDevpoolLive, DevicePools } from "../../cli/native/devpool.ts";
import { inBun, inC, trimmed } from "../../cli/lib/bench/measure.ts";
import type { Suite, SuiteContext } from "../../cli/lib/bench/types.ts";

const SIZES = [256, 64 << 10, 1 << 20];
const label = (n: number) => (n >= 1 << 20 ? `${n >> 20}MiB` : n >= 1024 ? `${n >> 10}KiB` : `${n}B`);

export const devpoolSuite: Suite = {
  name: "devpool",
  title: "Device memory pools",
  description:
    "Allocation and free in a tenant's device pool (audit ring and quota on) against a raw backend allocation per " +
    "request, timed in C and from Bun through the FFI; one pair timed alone for the cross-language target; and " +
    "a million allocations live at once in one pool.",
  estimate: (quick) => (quick ? 2 : 40),
  steps: (quick) => (quick ? 1 : SIZES.length) + 3,
  run(ctx) {
    const pools = DevicePools.create({ backend: "default", ignoreEnvAudit: true });
    try {
      const tenant = "bench";
      pools.setQuota(tenant, { bytes: 2 ** 40, count: 2 ** 30 });
      const dc = pools.context(tenant, "bun", "public");
      ctx.note(`backend ${pools.backend}; audit ring on; quota 1 TiB and 2^30 allocations`);
      const pairs = ctx.quick ? 50_000 : 1_000_000;
      for (const size of (ctx.filtered ? SIZES : ctx.quick ? [256] : SIZES).filter((n) => ctx.wants(`pair/${label(n)}/`))) {
        ctx.step(`pair ${label(size)}`);
        const m = inC(
          ctx.reps,
          {
            pool: () => benchDevpool(dc, "pool", size, pairs),
            raw: () => benchDevpool(dc, "raw", size, Math.max(1000, pairs / 50)),
          },
          trimmed,
        );
        for (const k of ["pool", "raw"] as const) {
          ctx.add({
            name: `pair/${label(size)}/${k}`,
            label: `${k === "pool" ? "pool alloc+free" : "raw backend allocation+release per request"}, ${label(size)}, C loop: mean per pair without the slowest 0.01%`,
            kind: "latency",
            unit: "ns",
            better: "lower",
            samples: m[k].samples,
            percentiles: m[k].percentiles,
            baseline: k === "pool" ? `pair/${label(size)}/raw` : undefined,
            measured: "c",
            params: { size, backend: pools.backend },
          });
        }
      }
      if (ctx.wants("bun/") || ctx.wants("single/")) fromBun(ctx, dc);
      if (ctx.wants("live/")) live(ctx, dc);
    } finally {
      pools.destroy();
    }
  },
};

function fromBun(ctx: SuiteContext, dc: ReturnType<DevicePools["context"]>): void {
  ctx.step("from Bun");
  const libc = dlopen("libc.so.6", {
    mmap: { args: [FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.ptr },
    munmap: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  });
  try {
    const { mmap, munmap } = libc.symbols;
    const B = 16;
    if (ctx.wants("bun/")) {
      const m = inBun(
        ctx.reps,
        {
          pool: { batch: B, fn: () => { for (let i = 0; i < B; i++) dc.free(dc.alloc(256)); } },
          raw: { batch: B, fn: () => { for (let i = 0; i < B; i++) munmap(mmap(null, 256, 3, 0x22, -1, 0), 256); } },
        },
        ctx.quick ? 20 : 200,
      );
      for (const k of ["pool", "raw"] as const) {
        ctx.add({
          name: `bun/256B/${k}`,
          label: `${k === "pool" ? "DeviceContext.alloc+free" : "mmap+munmap through bun:ffi"}, 256 B, per pair from Bun (batches of ${B})`,
          kind: "latency",
          unit: "ns",
          better: "lower",
          samples: m[k].samples,
          percentiles: m[k].percentiles,
          baseline: k === "pool" ? "bun/256B/raw" : undefined,
          measured: "bun",
          params: { size: 256, batch: B },
        });
      }
    }
    if (ctx.wants("single/")) {
      const s = inBun(ctx.reps, { pool: { batch: 1, fn: () => dc.free(dc.alloc(256)) } }, ctx.quick ? 1 : 20, { iterations: ctx.quick ? 20_000 : 200_000 });
      ctx.add({
        name: "single/256B/pool",
        label: "one DeviceContext.alloc(256)+free pair from Bun, timed alone (the timer's cost included: an upper bound)",
        kind: "latency",
        unit: "ns",
        better: "lower",
        samples: s.pool.samples,
        percentiles: s.pool.percentiles,
        measured: "bun",
        params: { size: 256, batch: 1 },
      });
    }
  } finally {
    libc.close();
  }
}

function live(ctx: SuiteContext, dc: ReturnType<DevicePools["context"]>): void {
  const n = ctx.quick ? 100_000 : 1_000_000;
  ctx.step(`${n} live allocations`);
  const alloc: number[] = [], free: number[] = [];
  for (let r = 0; r < Math.min(ctx.reps, 3); r++) {
    const res = benchDevpoolLive(dc, 256, n);
    alloc.push(res.alloc.nsPerOp);
    free.push(res.free.nsPerOp);
  }
  for (const [k, samples] of [["alloc", alloc], ["free", free]] as const) {
    ctx.add({
      name: `live/${n}/${k}`,
      label: `${k === "alloc" ? "allocating" : "freeing (shuffled)"} ${n.toLocaleString("en")} 256-byte allocations live at once in one pool, mean per operation`,
      kind: "latency",
      unit: "ns",
      better: "lower",
      samples,
      measured: "c",
      params: { live: n, size: 256 },
    });
  }
}
