// The device pools' commands as users run them: `aether pools demo`, `aether pools replay` (our format, RMM's
// CSV, generated traces), the pools line of `aether check` and `aether info`. Exit codes: 0, 1 for failures, 2 for
// usage mistakes, always one line.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Trace } from "../cli/native/devpool.ts";
import { aether } from "./helpers/run.ts";

const dir = mkdtempSync(join(tmpdir(), "aether-pools-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const host = { AETHER_DEVICE: "host", AETHER_AUDIT_LOG: undefined };

describe("aether pools demo", () => {
  test("every step behaves, exit 0; its audit log verifies", () => {
    const log = join(dir, "demo.jsonl");
    const r = aether(["pools", "demo", "--audit-log", log], { env: host });
    expect(r.code).toBe(0);
    for (const word of ["AETHER_ERR_ACCESS_DENIED", "AETHER_ERR_QUOTA_EXCEEDED", "AETHER_ERR_STALE_HANDLE", "AETHER_ERR_FORGED_HANDLE",
      "AETHER_ERR_OUT_OF_BOUNDS", "AETHER_ERR_NOT_OWNER", "audit trail"])
      expect(r.stdout).toContain(word);
    expect(r.stdout).not.toContain("FAIL");
    expect(aether(["audit", "verify", log]).code).toBe(0);
  });

  test("--json: verdict, steps, trail", () => {
    const r = aether(["pools", "demo", "--json"], { env: host });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.verdict).toBe("pass");
    expect(j.steps.length).toBeGreaterThanOrEqual(15);
    expect(j.steps.every((s: { pass: boolean }) => s.pass)).toBe(true);
    expect(j.trail.some((t: { op: string }) => t.op === "transfer")).toBe(true);
    expect(j.audit.records).toBe(j.trail.length);
  });

  test("an absent backend is one line, exit 1, no fallback", () => {
    const r = aether(["pools", "demo", "--backend", "hip"], { env: { AETHER_HIP_LIB: join(dir, "absent.so") } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("AETHER_ERR_BACKEND_UNAVAILABLE");
    expect(r.stdout).toBe("");
  });
});

describe("aether pools replay", () => {
  test("the generated random trace: percentiles, timeline, peak reserved within 1.10x of peak live", () => {
    const r = aether(["pools", "replay", "--generate", "random", "--ops", "60k", "--peak", "64m", "--max", "256k", "--json"], { env: host });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.backend).toBe("host");
    expect(j.ops).toBe(j.allocs + j.frees);
    expect(j.failures).toBe(0);
    expect(j.peakLiveBytes).toBeGreaterThan(60 << 20);
    expect(j.peakLiveBytes).toBeLessThanOrEqual(64 << 20);
    expect(j.ratio).toBeGreaterThanOrEqual(1);
    expect(j.ratio).toBeLessThanOrEqual(1.1);
    expect(j.peakReservedBytes / j.peakLiveBytes).toBeCloseTo(j.ratio, 10);
    for (const k of ["p50", "p90", "p99", "p999", "max"]) expect(j.latencyNs.alloc[k]).toBeGreaterThan(0);
    expect(j.latencyNs.alloc.p50).toBeLessThanOrEqual(j.latencyNs.alloc.p99);
    expect(j.timeline).toHaveLength(20);
    expect(j.timeline.at(-1).op).toBe(j.ops);
    expect(j.timeline.at(-1).liveBytes).toBe(0);
    for (const p of j.timeline) expect(p.fragmentation).toBeGreaterThanOrEqual(0);
    expect(j.fragmentation.max).toBeLessThanOrEqual(1);
  });

  test("--generate --out writes a trace (our format or RMM's) that replays the same way", () => {
    const ours = join(dir, "r.trace");
    const rmm = join(dir, "r.csv");
    expect(aether(["pools", "replay", "--generate", "sawtooth", "--ops", "5000", "--peak", "16m", "--seed", "3", "--out", ours]).code).toBe(0);
    expect(aether(["pools", "replay", "--generate", "sawtooth", "--ops", "5000", "--peak", "16m", "--seed", "3", "--out", rmm, "--format", "rmm"]).code).toBe(0);
    expect(readFileSync(rmm, "utf8").split("\n")[0]).toBe("Thread,Time,Action,Pointer,Size,Stream");
    const a = JSON.parse(aether(["pools", "replay", ours, "--json"], { env: host }).stdout);
    const b = JSON.parse(aether(["pools", "replay", rmm, "--json"], { env: host }).stdout);
    expect(a.format).toBe("aether");
    expect(b.format).toBe("rmm");
    expect(b.ops).toBe(a.ops);
    expect(b.peakLiveBytes).toBe(a.peakLiveBytes);
    const text = aether(["pools", "replay", ours], { env: host });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/peak live .* peak reserved .*x; fragmentation max/);
  });

  test("a real-world RMM log: columns by name, deallocate, failures and unknown frees skipped", () => {
    const f = join(dir, "rmm-real.csv");
    writeFileSync(f, [
      "Thread,Time,Action,Pointer,Size,Stream",
      "140573312345856,08:23:35:175000,allocate,0x7f8a40000000,1024,0x7f8a38001020",
      "140573312345856,08:23:35:175010,allocate,0x7f8a40000400,2048,0x7f8a38001020",
      "140573312345856,08:23:35:175020,allocate failure,0x0,99999999999,0x7f8a38001020",
      "140573312345856,08:23:35:175030,free,0x7f8a39999999,64,0x7f8a38001020",
      "140573312345856,08:23:35:175040,deallocate,0x7f8a40000000,1024,0x7f8a38001020",
      "140573312345856,08:23:35:175050,allocate,0x7f8a40000000,512,0x7f8a38001020",
      "140573312345856,08:23:35:175060,free,0x7f8a40000000,512,0x7f8a38001020",
      "140573312345856,08:23:35:175070,free,0x7f8a40000400,2048,0x7f8a38001020",
      "",
    ].join("\r\n"));
    const t = Trace.load(f);
    expect(t.info()).toEqual({ format: "rmm", ops: 6, allocs: 3, frees: 3, ids: 2, peakLiveBytes: 3072, skipped: 2, unfreed: 0 });
    t.free();
    const r = JSON.parse(aether(["pools", "replay", f, "--json"], { env: host }).stdout);
    expect(r).toMatchObject({ ops: 6, allocs: 3, frees: 3, failures: 0, peakLiveBytes: 3072 });
    const other = join(dir, "rmm-columns.csv");
    writeFileSync(other, "Size,Pointer,Action,Stream,Time,Thread\n100,0x10,allocate,0,0,1\n100,0x10,free,0,0,1\n");
    expect(Trace.load(other).info()).toMatchObject({ format: "rmm", allocs: 1, frees: 1 });
  });

  test("malformed traces are refused naming the line, exit 1", () => {
    const cases: [string, RegExp][] = [
      ["a 1 100\nx 2\n", /trace line 2: expected 'a ID SIZE' or 'f ID'/],
      ["a 1 100\na 1 200\n", /trace line 2: id 0x1 is allocated again without a free/],
      ["# c\nf 7\n", /trace line 2: free of id 0x7, which is not live/],
      ["a 1 0\n", /trace line 1: size 0 is not in/],
      ["a 1 10q\n", /trace line 1: expected 'a ID SIZE' with numbers/],
      ["Thread,Time,Pointer\n", /needs Action, Pointer and Size columns/],
      ["Thread,Time,Action,Pointer,Size,Stream\n1,0,grab,0x1,5,0\n", /action 'grab' is not allocate, free or deallocate/],
    ];
    for (const [text, re] of cases) {
      const f = join(dir, "bad.trace");
      writeFileSync(f, text);
      const r = aether(["pools", "replay", f], { env: host });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  test("usage mistakes exit 2 in one line", () => {
    for (const args of [
      ["pools", "replay"],
      ["pools", "replay", "x.trace", "--generate", "random"],
      ["pools", "replay", join(dir, "missing.trace")],
      ["pools", "replay", "--generate", "zigzag"],
      ["pools", "replay", "--generate", "random", "--occupancy", "1.5"],
      ["pools", "replay", "--generate", "random", "--format", "rmm"],
      ["pools", "replay", "--generate", "random", "--min", "4k", "--max", "1k"],
      ["pools", "replay", join(dir, "r.trace"), "--ops", "5"],
      ["pools", "replay", "--generate", "random", "--backend", "tpu"],
      ["pools", "demo", "--backend", "tpu"],
    ]) {
      const r = aether(args, { env: host });
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});

describe("aether check and info", () => {
  test("aether check --only pools passes with its figure", () => {
    const r = aether(["check", "--only", "pools", "--json"], { env: host });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.results[0]).toMatchObject({ id: "pools", verdict: "pass" });
    expect(j.results[0].data.refusalsCaught).toBe(7);
    expect(j.results[0].data.ratio).toBeLessThanOrEqual(1.1);
  });

  test("aether info lists the device backends", () => {
    const r = aether(["info", "--json"], { env: host });
    expect(r.code).toBe(0);
    const line = JSON.parse(r.stdout)["device backends"];
    expect(line).toMatch(/^host: 1 x host memory \(mmap\); hip: .*; cuda: /);
  });
});
