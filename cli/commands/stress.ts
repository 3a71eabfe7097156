import { Command, Option } from "clipanion";
import { AetherCommand, parseCount, parseSeconds, UsageError } from "../lib/command.ts";
import { color, formatRate, printJson, table, verdictText } from "../lib/output.ts";
import { runStress, STRESS_FAULTS, STRESS_TARGETS, type StressFault, type StressReport, type StressRunOptions, type StressTarget } from "../native/stress.ts";

const TARGETS = [...STRESS_TARGETS, "all"] as const;
type Target = (typeof TARGETS)[number];

const DEFAULT_ELEM: Record<StressTarget, number> = { spsc: 8, mpmc: 8, pool: 64, alloc: 4096 };
const MAX_ELEM: Record<StressTarget, number> = { spsc: 4096, mpmc: 4096, pool: 2 ** 20, alloc: 2 ** 24 };
const isQueue = (t: StressTarget) => t === "spsc" || t === "mpmc";

export class StressCommand extends AetherCommand {
  static override paths = [["stress"]];
  static override usage = Command.Usage({
    description: "verified concurrent load on the lock-free queues, the pool or the safe allocator",
    details: `
      Hammers one structure from several threads and checks everything that comes out. Queue items carry
      their producer's id and sequence number: consumers check per-producer order and counts, and at the end
      what each producer sent must match what was received, count and checksums. Pool and allocator users
      stamp every block they own and check the stamp before freeing it or handing it to another thread (so a
      block given to two owners is caught); new pool blocks must be zeroed and aligned; at the end nothing may
      be left in use (pool) or live (safe allocator), and no memory error may have been reported.

      Native mode (the default): the threads run in C, started by one call; a live progress line shows ops/s
      and they are stopped at the deadline. Worker mode (--workers N): N Bun Workers, each loading libaether
      itself, hammer the same structure through the FFI.

      Any violation ends the run with exit code 1 and one line saying what was violated, where and after how
      many operations. \`all\` runs spsc, mpmc, pool and alloc in turn (--capacity and --elem-size then apply
      to the queues only). --inject plants a fault (lose or duplicate a queue item; share a block between
      two owners) to show that the checker catches it.
    `,
    examples: [
      ["Two seconds of each structure", "aether stress all"],
      ["MPMC with 3 producers and 2 consumers for 10 s", "aether stress mpmc --producers 3 --consumers 2 --duration 10"],
      ["Exactly 10M items through the SPSC ring, 64-byte items", "aether stress spsc --ops 10m --elem-size 64"],
      ["The pool from 4 Bun Workers, as JSON", "aether stress pool --workers 4 --json"],
      ["Show the checker catching a lost item", "aether stress spsc --inject lose"],
    ],
  });

  target = Option.String({ name: "spsc|mpmc|pool|alloc|all" });
  threads = Option.String("--threads", { description: "threads (mpmc: split into producers and consumers; pool/alloc: users)" });
  producers = Option.String("--producers", { description: "queue producers (mpmc; spsc takes 1)" });
  consumers = Option.String("--consumers", { description: "queue consumers (mpmc; spsc takes 1)" });
  duration = Option.String("--duration", { description: "seconds per target (default 2, or until --ops are done)" });
  ops = Option.String("--ops", { description: "stop after this many operations (items consumed; blocks allocated and freed)" });
  capacity = Option.String("--capacity", { description: "queue capacity, a power of two in [8, 2^24] (default 1024); pool: max blocks (default 64 per thread)" });
  elemSize = Option.String("--elem-size", { description: "queue item bytes 1..4096 (default 8); pool block bytes (64); alloc largest block (4096)" });
  workers = Option.String("--workers", { description: "run in N Bun Workers through the FFI instead of native threads" });
  seed = Option.String("--seed", { description: "seed of the random choices (default: from the clock; printed)" });
  inject = Option.String("--inject", { description: "plant a fault to prove the checker: lose, duplicate (queues), share (pool, alloc)" });
  json = Option.Boolean("--json", false, { description: "print JSON" });

  #plan(target: StressTarget, all: boolean): StressRunOptions {
    const queue = isQueue(target);
    const threads = this.threads !== undefined ? parseCount("--threads", this.threads, 1, 64) : undefined;
    const workers = this.workers !== undefined ? parseCount("--workers", this.workers, 1, 64) : 0;
    let producers = this.producers !== undefined ? parseCount("--producers", this.producers, 1, 63) : undefined;
    let consumers = this.consumers !== undefined ? parseCount("--consumers", this.consumers, 1, 63) : undefined;
    if (threads !== undefined && (producers !== undefined || consumers !== undefined))
      throw new UsageError("give either --threads or --producers/--consumers, not both");
    if (threads !== undefined && workers)
      throw new UsageError("give either --threads (native threads) or --workers (Bun Workers), not both");
    const count = workers || threads;
    if (target === "spsc") {
      if ((producers ?? 1) !== 1 || (consumers ?? 1) !== 1) throw new UsageError("spsc takes exactly one producer and one consumer");
      if (count !== undefined && count !== 2) throw new UsageError(`spsc runs on exactly 2 ${workers ? "workers" : "threads"} (one producer, one consumer), got ${count}`);
      producers = consumers = 1;
    } else if (target === "mpmc") {
      if (count !== undefined) {
        if (count < 2) throw new UsageError(`mpmc needs at least 2 ${workers ? "workers" : "threads"} (a producer and a consumer), got ${count}`);
        producers = Math.ceil(count / 2);
        consumers = count - producers;
      } else {
        producers ??= 2;
        consumers ??= 2;
      }
      if (producers + consumers > 64) throw new UsageError(`at most 64 producers and consumers in all, got ${producers + consumers}`);
    } else {
      if ((producers !== undefined || consumers !== undefined) && !all)
        throw new UsageError(`--producers and --consumers are for queues; ${target} takes --threads or --workers`);
      producers = count ?? 4;
      consumers = 0;
    }
    const applyQueueOnly = all && !queue;
    let capacity = queue ? 1024 : 0;
    if (this.capacity !== undefined && !applyQueueOnly) {
      capacity = parseCount("--capacity", this.capacity, queue ? 1 : 0, queue ? Number.MAX_SAFE_INTEGER : 2 ** 32 - 1);
      if (queue && (capacity & (capacity - 1)) !== 0) throw new UsageError(`--capacity ${this.capacity} is not a power of two (queues take a power of two in [8, 2^24])`);
      if (queue && (capacity < 8 || capacity > 2 ** 24)) throw new UsageError(`--capacity ${this.capacity} is not in [8, 2^24]`);
    }
    let elemSize = DEFAULT_ELEM[target];
    if (this.elemSize !== undefined && !applyQueueOnly) elemSize = parseCount("--elem-size", this.elemSize, 1, MAX_ELEM[target]);
    const ops = this.ops !== undefined ? parseCount("--ops", this.ops, 1) : 0;
    const durationS = this.duration !== undefined ? parseSeconds("--duration", this.duration) : ops ? null : 2;
    const inject = (this.inject ?? "none") as StressFault;
    if (!STRESS_FAULTS.includes(inject)) throw new UsageError(`--inject must be one of ${STRESS_FAULTS.join(", ")}, got '${this.inject}'`);
    if (inject !== "none") {
      if (all) throw new UsageError("--inject needs one target, not all");
      if (queue && inject === "share") throw new UsageError("--inject share is for pool and alloc; queues take lose or duplicate");
      if (!queue && inject !== "share") throw new UsageError(`--inject ${inject} is for queues; ${target} takes share`);
    }
    const seed = this.seed !== undefined ? parseCount("--seed", this.seed, 0, 2 ** 53 - 1) : Date.now() % 2 ** 32;
    return { target, producers, consumers, ops, capacity, elemSize, seed, inject, durationS, workers };
  }

  async execute(): Promise<number> {
    if (!(TARGETS as readonly string[]).includes(this.target))
      throw new UsageError(`unknown target '${this.target}' (expected ${TARGETS.join(", ")})`);
    const all = this.target === "all";
    const targets: StressTarget[] = all ? [...STRESS_TARGETS] : [this.target as StressTarget];
    const plans = targets.map((t) => this.#plan(t, all)); // every usage error before anything runs
    const live = !this.json && process.stderr.isTTY === true;
    const reports: StressReport[] = [];
    for (const plan of plans) {
      const label = `${plan.target}${plan.workers ? ` (${plan.workers} workers)` : ""}`;
      plan.onProgress = live
        ? (p) =>
            process.stderr.write(
              `\r\x1b[K${label}: ${(p.elapsedNs / 1e9).toFixed(1)} s  ${formatRate(p.elapsedNs > 0 ? (p.ops * 1e9) / p.elapsedNs : 0)}  ${p.ops.toLocaleString("en-US")} ops  ${isQueue(plan.target) ? "depth" : "in use"} ${p.maxDepth}  violations ${p.violations}`,
            )
        : undefined;
      const r = await runStress(plan);
      if (live) process.stderr.write("\r\x1b[K");
      reports.push(r);
      if (r.violations > 0) break; // the first violation ends the run
    }
    const failed = reports.find((r) => r.violations > 0);
    if (this.json) {
      if (all) printJson({ verdict: failed ? "fail" : "pass", violations: reports.reduce((a, r) => a + r.violations, 0), ops: reports.reduce((a, r) => a + r.ops, 0), results: reports });
      else printJson(reports[0]);
    } else {
      const rows = reports.map((r) => [
        r.target,
        verdictText(r.verdict),
        r.mode === "workers" ? `${r.threads} workers` : "native",
        isQueue(r.target) ? `${r.producers}P/${r.consumers}C` : `${r.threads} threads`,
        `${r.ops.toLocaleString("en-US")} ops in ${r.durationS.toFixed(2)} s`,
        formatRate(r.opsPerSec),
        `${isQueue(r.target) ? "max depth" : "max in use"} ${r.maxDepth}`,
        `${r.violations} violation${r.violations === 1 ? "" : "s"}`,
      ]);
      this.out(table(rows));
      this.out(color.dim(`seed ${reports[0]?.seed ?? 0} (--seed to repeat the run's random choices)`));
    }
    if (failed) {
      this.err(`aether stress: ${failed.violation}`);
      return 1;
    }
    return 0;
  }
}
