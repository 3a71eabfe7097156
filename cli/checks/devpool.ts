// The device pools' self-check: every refusal caught with its own status, a secret wipe leaves nothing, an
// ownership transfer revokes the old owner's writes, a hash-chained audit file verifies and a tampered copy
// does not, a random trace stays within 1.10x of its peak, and the alloc+free pair is timed in C against a
// raw backend allocation per request in the same run. GPU backends are probed and reported, not required.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateTrace } from "../lib/tracegen.ts";
import { errorCode } from "../native/ffi.ts";
import {
  benchDevpool,
  cryptoStatus,
  deviceBackends,
  DevicePools,
  replayTrace,
  Trace,
  verifyAuditFile,
} from "../native/devpool.ts";
import type { CheckDef, CheckResult } from "./types.ts";


export const devpoolCheck: CheckDef = {
  component: "device pools",
  id: "pools",
  run(): CheckResult {
    const problems: string[] = [];
    const expect = (what: string, want: string, got: string) => {
      if (want !== got) problems.push(`${what}: expected ${want}, got ${got}`);
      return want === got;
    };
    const dir = mkdtempSync(join(tmpdir(), "aether-check-pools-"));
    const log = join(dir, "audit.jsonl");
    const pools = DevicePools.create({ backend: "host", verifyWipe: true, ignoreEnvAudit: true });
    let caught = 0;
    let chain = "not run";
    let ratio = 0;
    let pool = { p50Ns: 0, p99Ns: 0 };
    let raw = { p50Ns: 0, p99Ns: 0 };
    try {
      const crypto = cryptoStatus();
      if (crypto.available) pools.setAuditLog(log);
      else problems.push(`audit files unavailable: ${crypto.message}`);
      const a = pools.context("check-a", "rust", "secret");
      const a2 = pools.context("check-a", "julia", "public");
      const b = pools.context("check-b", "elixir", "public");
      pools.setQuota("check-b", { bytes: 64 << 10 });
      const h = a.alloc(1000);
      a.write(h, 0, new Uint8Array(1000).fill(0xa5));
      const refusals: [string, string, () => unknown][] = [
        ["another tenant's handle", "AETHER_ERR_ACCESS_DENIED", () => b.read(h, 0, 1)],
        ["out of bounds", "AETHER_ERR_OUT_OF_BOUNDS", () => a.read(h, 999, 2)],
        ["forged handle", "AETHER_ERR_FORGED_HANDLE", () => a.free(h ^ 0x40n)],
        ["quota", "AETHER_ERR_QUOTA_EXCEEDED", () => b.alloc(65 << 10)],
        ["use after free", "AETHER_ERR_STALE_HANDLE", () => (a.free(h), a.read(h, 0, 1))],
        ["double free", "AETHER_ERR_STALE_HANDLE", () => a.free(h)],
      ];
      for (const [what, want, fn] of refusals) if (expect(what, want, errorCode(fn))) caught++;
      const again = a.alloc(1000);
      if (a.read(again, 0, 1000).some((x) => x !== 0)) problems.push("a secret allocation held freed bytes");
      a.free(again);
      const { object, ref } = a2.share(64, { perms: "rust:rw" });
      const r2 = a.acquire(object, "rw");
      if (expect("write after an ownership transfer", "AETHER_ERR_NOT_OWNER", errorCode(() => a2.write(ref, 0, new Uint8Array(1))))) caught++;
      a2.release(ref);
      a.release(r2);
      const leaks = pools.checkLeaks().total;
      if (leaks) problems.push(`${leaks} allocation(s) live after freeing everything`);
      if (crypto.available) {
        pools.flushAudit();
        const v = verifyAuditFile(log);
        if (!v.ok) problems.push(`the audit file does not verify: line ${v.badLine}: ${v.reason}`);
        const lines = readFileSync(log, "utf8").split("\n");
        lines[3] = lines[3]!.replace('"op":"', '"op":"x');
        writeFileSync(log + ".edited", lines.join("\n"));
        const t = verifyAuditFile(log + ".edited");
        if (t.ok || t.badLine !== 4) problems.push(`an edited audit line was not named (line ${t.badLine}, ${t.status})`);
        chain = v.ok && !t.ok ? `audit chain of ${v.records} verified, edit caught` : "audit chain FAILED";
        pools.setAuditLog(null); /* the timings below are of the pools, not of the file writer */
      }
      // 20k operations of the random trace, at a 64 MiB peak with sizes up to 256 KiB (the benchmark's shape,
      // smaller): peak reserved must stay within 1.10x of peak live.
      const gen = generateTrace({ pattern: "random", ops: 20_000, peak: 64 << 20, minSize: 256, maxSize: 256 << 10,
        dist: "log", occupancy: 0.9, seed: 1, format: "aether" });
      const trace = Trace.parse(gen.text);
      const r = replayTrace(pools.context("check-trace", "c", "public"), trace, 10);
      trace.free();
      ratio = r.ratio;
      if (!(ratio <= 1.1)) problems.push(`random trace: peak reserved is ${ratio.toFixed(3)}x peak live (target 1.10x)`);
      const bench = pools.context("check-bench", "c", "public");
      pools.setQuota("check-bench", { bytes: 2 ** 40, count: 2 ** 30 });
      pool = benchDevpool(bench, "pool", 256, 100_000);
      raw = benchDevpool(bench, "raw", 256, 5_000);
    } finally {
      pools.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
    const gpus = deviceBackends().filter((d) => d.backend !== "host");
    const gpuText = gpus.map((d) => `${d.backend} ${d.available ? `${d.devices} device(s)` : d.status === "AETHER_ERR_NO_DEVICE" ? "no device" : "absent"}`).join(", ");
    return {
      verdict: problems.length ? "fail" : "pass",
      figure: `${caught}/7 refusals caught, ${chain}, random trace ${ratio.toFixed(3)}x peak; pair p99 ${pool.p99Ns.toFixed(0)} ns (raw backend ${(raw.p99Ns / 1000).toFixed(1)} µs); ${gpuText}`,
      problems,
      data: { refusalsCaught: caught, ratio, pairP50Ns: pool.p50Ns, pairP99Ns: pool.p99Ns, rawP50Ns: raw.p50Ns, rawP99Ns: raw.p99Ns,
        backends: Object.fromEntries(deviceBackends().map((d) => [d.backend, d.status])) },
    };
  },
};
