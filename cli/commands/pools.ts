// `aether pools demo` and `aether pools replay`: the device pools for many tenants, shown and measured.
import { Command, Option } from "clipanion";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AetherCommand, appendableFile, parseCount, UsageError } from "../lib/command.ts";
import { color, formatBytes, formatNs, printJson, table } from "../lib/output.ts";
import { GEN_DEFAULTS, generateTrace, PATTERNS, type Pattern } from "../lib/tracegen.ts";
import { errorCode } from "../native/ffi.ts";
import {
  type BackendChoice,
  DevicePools,
  replayTrace,
  Trace,
  verifyAuditFile,
  type AuditRecord,
  type DeviceContext,
} from "../native/devpool.ts";

const BACKEND_CHOICES = ["default", "auto", "host", "hip", "cuda"] as const;

function parseBackend(value: string | undefined): BackendChoice {
  const v = value ?? "default";
  if (!(BACKEND_CHOICES as readonly string[]).includes(v))
    throw new UsageError(`--backend expects one of ${BACKEND_CHOICES.join(", ")}, got '${v}'`);
  return v as BackendChoice;
}

function hex(h: bigint): string {
  return `0x${h.toString(16).padStart(16, "0")}`;
}


interface Step {
  step: string;
  expected: string;
  got: string;
  detail: string;
  pass: boolean;
}

export class PoolsDemoCommand extends AetherCommand {
  static override paths = [["pools", "demo"]];
  static override usage = Command.Usage({
    description: "a scripted multi-tenant session on the device pools",
    details: `
      Three contexts share one device: acme's Rust runtime (secret), acme's Julia runtime (confidential) and
      globex's Elixir runtime (public). The script shows isolation (globex cannot touch acme's handle), a quota
      denial, a use after free, a forged handle and an out-of-bounds copy caught, a secret wipe, a shared object
      changing owner between acme's runtimes, and the hash-chained audit trail, which it then verifies. Each
      step prints what was expected and what happened; the exit code is 1 if any step did not behave.

      The backend is AETHER_DEVICE (auto when unset) unless --backend names one; a backend that is absent is an
      error, never a silent fallback to the host.
    `,
    examples: [
      ["Run the demo on the host backend", "aether pools demo --backend host"],
      ["Keep the audit log and print JSON", "aether pools demo --audit-log demo.jsonl --json"],
    ],
  });

  backend = Option.String("--backend", { description: "default, auto, host, hip or cuda" });
  auditLog = Option.String("--audit-log", { description: "write the audit trail to this JSON Lines file (kept; an existing one is continued)" });
  json = Option.Boolean("--json", false, { description: "print JSON" });

  async execute(): Promise<number> {
    const backend = parseBackend(this.backend);
    const dir = mkdtempSync(join(tmpdir(), "aether-pools-demo-"));
    const log = this.auditLog ?? join(dir, "audit.jsonl");
    // An existing file is continued, never replaced: an audit trail is append-only (its last record must verify).
    const pools = DevicePools.create({ backend, verifyWipe: true });
    const steps: Step[] = [];
    const say = (step: string, expected: string, got: string, detail = "") => {
      const s = { step, expected, got, detail, pass: expected === got };
      steps.push(s);
      if (!this.json) {
        const mark = s.pass ? color.green("ok  ") : color.red("FAIL");
        this.out(`${mark} ${step}: ${got === expected ? got : `expected ${expected}, got ${got}`}${detail ? color.dim(`  (${detail})`) : ""}`);
      }
    };
    let records: AuditRecord[] = [];
    const names = new Map<number, string>();
    try {
      pools.setAuditLog(log);
      const rust = pools.context("acme", "rust", "secret");
      const julia = pools.context("acme", "julia", "confidential");
      const elixir = pools.context("globex", "elixir", "public");
      for (const c of [rust, julia, elixir]) names.set(c.id, `${c.tenant}/${c.runtime}`);
      if (!this.json) this.out(color.bold(`device pools on the ${pools.backend} backend: acme/rust (secret), acme/julia (confidential), globex/elixir (public)`));

      // isolation
      const secret = rust.alloc(4096);
      rust.write(secret, 0, Buffer.from("acme's model weights, secret"));
      say("globex reads acme's handle", "AETHER_ERR_ACCESS_DENIED", errorCode(() => elixir.read(secret, 0, 16)), hex(secret));
      say("globex frees acme's handle", "AETHER_ERR_ACCESS_DENIED", errorCode(() => elixir.free(secret)));
      say("acme's julia runtime reads acme/rust's handle", "AETHER_ERR_ACCESS_DENIED", errorCode(() => julia.read(secret, 0, 16)),
        "another context of the same tenant: share it as an object instead");

      // quota
      pools.setQuota("globex", { bytes: 1 << 20, count: 100 });
      const g1 = elixir.alloc(768 << 10);
      say("globex allocates 768 KiB of its 1 MiB quota", "ok", errorCode(() => elixir.size(g1)));
      say("globex allocates 512 KiB more", "AETHER_ERR_QUOTA_EXCEEDED", errorCode(() => elixir.alloc(512 << 10)));
      elixir.free(g1);

      // bounds, use after free, forged
      say("acme writes 1 byte past the end of 4096", "AETHER_ERR_OUT_OF_BOUNDS", errorCode(() => rust.write(secret, 4096, new Uint8Array(1))));
      rust.free(secret);
      say("acme reads the freed handle (use after free)", "AETHER_ERR_STALE_HANDLE", errorCode(() => rust.read(secret, 0, 16)));
      say("acme frees it again (double free)", "AETHER_ERR_STALE_HANDLE", errorCode(() => rust.free(secret)));
      say("acme uses a made-up handle", "AETHER_ERR_FORGED_HANDLE", errorCode(() => rust.read(secret ^ 0x1234n, 0, 16)), hex(secret ^ 0x1234n));

      // wipe
      const again = rust.alloc(4096);
      const bytes = rust.read(again, 0, 4096);
      const stale = bytes.some((b) => b !== 0);
      say("the next secret allocation holds none of the freed bytes", "all zero", stale ? "old bytes" : "all zero",
        `${formatBytes(rust.stats().wipedBytes)} overwritten: zero, 0xFF, random, zero, read back`);
      rust.free(again);

      // shared object and ownership transfer
      const { object, ref: rustRef } = rust.share(64, { perms: { julia: "rw" }, init: Buffer.from("v1") });
      const juliaRef = julia.acquire(object, "rw");
      const info = pools.shareInfo(object);
      say("julia acquires the object read-write: ownership moves", "julia", info.ownerCtx === julia.id ? "julia" : "rust",
        `${info.refcount} references, ${info.transfers} transfer`);
      say("rust writes after the transfer", "AETHER_ERR_NOT_OWNER", errorCode(() => rust.write(rustRef, 0, Buffer.from("v2"))));
      julia.write(juliaRef, 0, Buffer.from("v3"));
      say("rust still reads what julia wrote", "v3", Buffer.from(rust.read(rustRef, 0, 2)).toString());
      say("globex acquires acme's object", "AETHER_ERR_ACCESS_DENIED", errorCode(() => elixir.acquire(object, "r")));
      rust.release(rustRef);
      julia.release(juliaRef);
      say("after the last release the object is gone", "AETHER_ERR_STALE_HANDLE", errorCode(() => pools.shareInfo(object)));

      // leaks and audit
      const leaks = pools.checkLeaks();
      say("leaks", "0", String(leaks.total));
      records = pools.audit(0, 1024);
      pools.flushAudit();
    } finally {
      pools.destroy();
    }
    const verdict = verifyAuditFile(log);
    say("the audit file verifies", "ok", verdict.status, `${verdict.records} records, head ${verdict.head.slice(0, 16)}...`);
    const denials = records.filter((r) => r.result !== "ok");
    if (this.json) {
      printJson({
        verdict: steps.every((s) => s.pass) ? "pass" : "fail",
        steps,
        audit: { file: this.auditLog ?? null, records: verdict.records, head: verdict.head, denials: denials.length },
        trail: records.map((r) => ({ ...r, context: names.get(r.ctx) ?? null, timeNs: String(r.timeNs), handle: hex(r.handle) })),
      });
    } else {
      this.out("");
      this.out(color.bold(`audit trail (${records.length} records, ${denials.length} refusals), chained in ${this.auditLog ?? "a temporary file"}:`));
      const rows = [["seq", "context", "op", "handle", "size", "result"]];
      for (const r of records) {
        rows.push([String(r.seq), names.get(r.ctx) ?? "-", r.op, r.handle ? hex(r.handle) : "-", String(r.size),
          r.result === "ok" ? "ok" : color.yellow(r.result)]);
      }
      this.out(table(rows, [0, 4]));
    }
    if (!this.auditLog) rmSync(dir, { recursive: true, force: true });
    return steps.every((s) => s.pass) ? 0 : 1;
  }
}

export class PoolsReplayCommand extends AetherCommand {
  static override paths = [["pools", "replay"]];
  static override usage = Command.Usage({
    description: "replay an allocation trace in a device pool, or generate one",
    details: `
      Replays a trace in a fresh context of the device pools, timing every allocation and free in C, and reports
      latency percentiles, peak reserved against peak live bytes, and fragmentation (1 - largest free block /
      free bytes) over time. Two formats are read, told apart by their first line: ours ("a ID SIZE" allocates,
      "f ID" frees, '#' comments) and the CSV RAPIDS RMM's logging_resource_adaptor writes
      (Thread,Time,Action,Pointer,Size,Stream).

      --generate PATTERN makes a synthetic trace instead: random (log-uniform sizes 256 B to 1 MiB; fills to
      --peak, then frees random blocks down to --occupancy of it and refills, over and over), ramp (fill, then
      free all), sawtooth (fill, free the oldest half, refill) or small (sizes up to 8 KiB). With --out it is
      written to a file (--format aether or rmm) and not replayed.
    `,
    examples: [
      ["Replay an RMM log", "aether pools replay rmm_log.csv"],
      ["Replay the random trace the benchmark uses", "aether pools replay --generate random"],
      ["Write a random trace to a file", "aether pools replay --generate random --ops 1m --seed 7 --out random.trace"],
      ["As JSON, on the CUDA backend", "aether pools replay random.trace --backend cuda --json"],
    ],
  });

  trace = Option.String({ required: false, name: "trace" });
  generate = Option.String("--generate", { description: `make a synthetic trace: ${PATTERNS.join(", ")}` });
  out_ = Option.String("--out", { description: "with --generate: write the trace here instead of replaying it" });
  format = Option.String("--format", { description: "with --out: aether (default) or rmm" });
  ops = Option.String("--ops", { description: "with --generate: operations (default 200k)" });
  peak = Option.String("--peak", { description: "with --generate: live bytes at the peak (default 256m)" });
  minSize = Option.String("--min", { description: "with --generate: smallest size (default 256)" });
  maxSize = Option.String("--max", { description: "with --generate: largest size (default 1m)" });
  dist = Option.String("--dist", { description: "with --generate: log (default) or uniform sizes" });
  occupancy = Option.String("--occupancy", { description: "with --generate: refill threshold as a fraction of the peak (0.9)" });
  seed = Option.String("--seed", { description: "with --generate: random seed (default 1)" });
  backend = Option.String("--backend", { description: "default, auto, host, hip or cuda" });
  points = Option.String("--points", { description: "timeline points (default 20)" });
  json = Option.Boolean("--json", false, { description: "print JSON" });

  async execute(): Promise<number> {
    if (this.generate === undefined && this.trace === undefined)
      throw new UsageError("give a trace file, or --generate PATTERN");
    if (this.generate !== undefined && this.trace !== undefined)
      throw new UsageError("give a trace file or --generate, not both");
    if (this.generate === undefined) {
      for (const [flag, v] of [["--out", this.out_], ["--format", this.format], ["--ops", this.ops], ["--peak", this.peak],
        ["--min", this.minSize], ["--max", this.maxSize], ["--dist", this.dist], ["--occupancy", this.occupancy], ["--seed", this.seed]] as const)
        if (v !== undefined) throw new UsageError(`${flag} goes with --generate`);
    }
    const points = this.points === undefined ? 20 : parseCount("--points", this.points, 1, 10_000);
    let source: string;
    let trace: Trace;
    if (this.generate !== undefined) {
      if (!(PATTERNS as readonly string[]).includes(this.generate))
        throw new UsageError(`--generate expects one of ${PATTERNS.join(", ")}, got '${this.generate}'`);
      const occupancy = this.occupancy === undefined ? GEN_DEFAULTS.occupancy : Number(this.occupancy);
      if (!(occupancy > 0 && occupancy < 1)) throw new UsageError(`--occupancy expects a fraction in (0, 1), got '${this.occupancy}'`);
      if (this.dist !== undefined && this.dist !== "log" && this.dist !== "uniform")
        throw new UsageError(`--dist expects log or uniform, got '${this.dist}'`);
      if (this.format !== undefined && this.format !== "aether" && this.format !== "rmm")
        throw new UsageError(`--format expects aether or rmm, got '${this.format}'`);
      if (this.format !== undefined && this.out_ === undefined) throw new UsageError("--format goes with --out");
      const minSize = this.minSize === undefined ? GEN_DEFAULTS.minSize : parseCount("--min", this.minSize, 1, 2 ** 40);
      const maxSize = this.maxSize === undefined ? GEN_DEFAULTS.maxSize : parseCount("--max", this.maxSize, 1, 2 ** 40);
      if (maxSize < minSize) throw new UsageError(`--max ${maxSize} is below --min ${minSize}`);
      const peak = this.peak === undefined ? GEN_DEFAULTS.peak : parseCount("--peak", this.peak, maxSize, 2 ** 46);
      const opts = {
        pattern: this.generate as Pattern,
        ops: this.ops === undefined ? GEN_DEFAULTS.ops : parseCount("--ops", this.ops, 1, 100_000_000),
        peak, minSize, maxSize, occupancy,
        dist: (this.dist ?? GEN_DEFAULTS.dist) as "log" | "uniform",
        seed: this.seed === undefined ? GEN_DEFAULTS.seed : parseCount("--seed", this.seed, 0, 2 ** 52),
        format: (this.format ?? "aether") as "aether" | "rmm",
      };
      if (this.out_ !== undefined) appendableFile("--out", this.out_);
      const gen = generateTrace(opts);
      if (this.out_ !== undefined) {
        writeFileSync(this.out_, gen.text);
        if (this.json) printJson({ file: this.out_, ...opts, lines: gen.ops, peakLiveBytes: gen.peakLive });
        else this.out(`wrote ${this.out_}: ${gen.ops} operations (${opts.pattern}, ${opts.format} format), peak live ${formatBytes(gen.peakLive)}`);
        return 0;
      }
      source = `generated ${opts.pattern} (seed ${opts.seed}, peak ${formatBytes(peak)}, sizes ${minSize}..${maxSize} ${opts.dist})`;
      trace = Trace.parse(gen.text);
    } else {
      if (!existsSync(this.trace!)) throw new UsageError(`trace not found: ${this.trace}`);
      source = this.trace!;
      trace = Trace.load(this.trace!);
    }
    const backend = parseBackend(this.backend);
    const pools = DevicePools.create({ backend, ignoreEnvAudit: false });
    try {
      const info = trace.info();
      const ctx: DeviceContext = pools.context("replay", "trace", "public");
      const r = replayTrace(ctx, trace, points);
      const st = ctx.stats();
      const result = {
        source, backend: pools.backend, format: info.format, trace: info,
        ops: r.ops, allocs: r.allocs, frees: r.frees, failures: r.failures,
        latencyNs: {
          alloc: { p50: r.alloc.p50Ns, p90: r.alloc.p90Ns, p99: r.alloc.p99Ns, p999: r.alloc.p999Ns, max: r.alloc.maxNs },
          free: { p50: r.free.p50Ns, p90: r.free.p90Ns, p99: r.free.p99Ns, p999: r.free.p999Ns, max: r.free.maxNs },
        },
        peakLiveBytes: r.peakLiveBytes, peakReservedBytes: r.peakReservedBytes, ratio: r.ratio,
        finalReservedBytes: r.finalReservedBytes,
        fragmentation: { max: r.fragmentationMax, mean: r.fragmentationMean, atPeak: r.fragmentationAtPeak },
        compactions: st.compactions, movedBytes: st.movedBytes, slabsAcquired: st.slabsAcquired,
        timeline: r.timeline,
      };
      if (this.json) {
        printJson(result);
        return 0;
      }
      this.out(color.bold(`replayed ${source} on the ${pools.backend} backend`));
      this.out(`${info.format} trace: ${r.ops} operations (${r.allocs} allocations, ${r.frees} frees)` +
        (info.skipped ? `, ${info.skipped} rows skipped` : "") + (r.failures ? color.yellow(`, ${r.failures} allocations refused`) : ""));
      const lat = (b: typeof r.alloc) => [formatNs(b.p50Ns), formatNs(b.p90Ns), formatNs(b.p99Ns), formatNs(b.p999Ns), formatNs(b.maxNs)];
      this.out(table([["latency", "p50", "p90", "p99", "p99.9", "max"], ["alloc", ...lat(r.alloc)], ["free", ...lat(r.free)]], [1, 2, 3, 4, 5]));
      this.out(`peak live ${formatBytes(r.peakLiveBytes)}, peak reserved ${formatBytes(r.peakReservedBytes)}: ${r.ratio.toFixed(3)}x` +
        `; fragmentation max ${r.fragmentationMax.toFixed(3)}, mean ${r.fragmentationMean.toFixed(3)}, at peak ${r.fragmentationAtPeak.toFixed(3)}`);
      this.out(`${st.compactions} compactions moved ${formatBytes(st.movedBytes)}; ${st.slabsAcquired} backend allocation(s)`);
      const rows = [["op", "live", "reserved", "fragmentation"]];
      for (const p of r.timeline) rows.push([String(p.op), formatBytes(p.liveBytes), formatBytes(p.reservedBytes), p.fragmentation.toFixed(3)]);
      this.out(table(rows, [0, 1, 2, 3]));
      return 0;
    } finally {
      trace.free();
      pools.destroy();
    }
  }
}
