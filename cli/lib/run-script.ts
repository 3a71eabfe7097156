// run-script.ts: `aether run <script.ts>`: run a Bun script in this process with the safe allocator's options
// set, then report its errors and the blocks it left allocated, in the same shape as a program's run report.
import { readFileSync, writeFileSync } from "node:fs";
import { memory, type OptionName } from "../native/memory.ts";
import { symbolizeReports, type RawReport, type RunOptions, type RunReport } from "./run-program.ts";
import type { RawFrame } from "./symbolize.ts";

const LEAKS_LISTED = { summary: 10, full: 1000, off: 0 } as const;

/** Set the allocator's options from the command line; called before the script allocates anything. */
export function applyScriptOptions(opts: RunOptions): void {
  const set: [OptionName, string | number | boolean][] = [
    ["abort_on_error", opts.abortOnError],
    ["backtrace", opts.backtrace],
  ];
  if (opts.log) set.push(["log_file", opts.log]);
  if (opts.quarantine !== undefined) set.push(["quarantine_bytes", opts.quarantine]);
  if (opts.redzone !== undefined) set.push(["redzone", opts.redzone]);
  if (opts.leaks === "full") set.push(["leak_report_max", 1_000_000]);
  for (const [name, value] of set) memory.setOption(name, value);
  memory.init();
}

interface Mapping {
  start: number;
  end: number;
  path: string;
}

/** File-backed mappings of this process, and the load base (lowest start) of each file. */
function mappings(): { maps: Mapping[]; base: Map<string, number> } {
  const maps: Mapping[] = [];
  const base = new Map<string, number>();
  for (const line of readFileSync("/proc/self/maps", "utf8").split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s+(\/.*)$/.exec(line);
    if (!m) continue;
    const start = parseInt(m[1]!, 16);
    const path = m[3]!;
    maps.push({ start, end: parseInt(m[2]!, 16), path });
    if (!base.has(path) || start < base.get(path)!) base.set(path, start);
  }
  return { maps, base };
}

function rawStack(id: number, where: ReturnType<typeof mappings>): RawFrame[] {
  return memory.trace(id).map((addr) => {
    const hex = `0x${addr.toString(16)}`;
    const m = where.maps.find((x) => addr >= x.start && addr < x.end);
    return m ? { addr: hex, module: m.path, base: `0x${where.base.get(m.path)!.toString(16)}` } : { addr: hex };
  });
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** What the script did to the heap, after it finished (or threw), as a run report of this one process. */
export function scriptReport(script: string, args: string[], exitCode: number, errorsAfter: number, leaks: RunOptions["leaks"]): RunReport {
  const stats = memory.stats();
  const events = memory.errors(errorsAfter);
  const live = memory.liveBlocks(LEAKS_LISTED[leaks]);
  const where = mappings();
  const errors: Record<string, number> = {};
  for (const e of events) errors[e.kind] = (errors[e.kind] ?? 0) + 1;
  const { errors: _totals, ...counters } = stats;
  const raw: RawReport = {
    pid: process.pid,
    ppid: process.ppid,
    exe: process.execPath,
    argv: [script, ...args],
    stats: counters,
    errors,
    events: events.map((e) => ({
      seq: e.seq,
      kind: e.kind,
      address: hex(e.address),
      size: e.size,
      detail: e.detail,
      thread: e.threadId,
      allocStack: rawStack(e.allocTrace, where),
      freeStack: rawStack(e.freeTrace, where),
      whereStack: rawStack(e.whereTrace, where),
    })),
    leaks: {
      count: live.total,
      bytes: stats.liveBytes,
      largest: live.blocks.map((b) => ({ address: hex(b.address), size: b.size, allocStack: rawStack(b.allocTrace, where) })),
    },
  };
  return {
    program: script,
    args,
    exitCode,
    signal: null,
    processes: symbolizeReports([raw], process.pid),
    totalErrors: events.length,
    errorsByKind: errors,
    mainReported: true,
  };
}

export function writeReport(path: string | undefined, report: RunReport): void {
  if (path) writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`);
}
