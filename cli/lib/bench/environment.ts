// environment.ts: what a result was measured on, recorded with every result so two results can be told apart:
// CPU model and flags, cores, kernel, compiler, library variant, Bun version, git commit, load.
import { readFileSync } from "node:fs";
import os from "node:os";
import { native, PACKAGE_ROOT } from "../../native/ffi.ts";
import { simd } from "../../native/qstate.ts";
import { cpuFeatures, cpuModel, libraryInfo } from "../../native/system.ts";
import type { Environment } from "./types.ts";

/** The flags of /proc/cpuinfo that decide how fast our loops can be (vector units, the cycle counter, whether
 * we run under a hypervisor); the whole list is kept too. */
export const NOTABLE_FLAGS = [
  "sse4_2", "avx", "avx2", "fma", "bmi2", "avx512f", "avx512bw", "avx512vl", "erms", "fsrm",
  "constant_tsc", "nonstop_tsc", "rdtscp", "hypervisor",
];

function cpuinfo(): { flags: string[]; mhz?: number } {
  try {
    const text = readFileSync("/proc/cpuinfo", "utf8");
    const flags = /^flags\s*:\s*(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
    const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(text)?.[1]);
    return { flags, mhz: Number.isFinite(mhz) ? mhz : undefined };
  } catch {
    return { flags: [] };
  }
}

function git(args: string[]): string | null {
  try {
    const r = Bun.spawnSync({ cmd: ["git", ...args], cwd: PACKAGE_ROOT, stdout: "pipe", stderr: "ignore" });
    return r.exitCode === 0 ? r.stdout.toString().trim() : null;
  } catch {
    return null;
  }
}

function osName(): string {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

export function environment(): Environment {
  const lib = libraryInfo();
  const info = cpuinfo();
  const commit = git(["rev-parse", "HEAD"]);
  const status = commit ? git(["status", "--porcelain", "--untracked-files=no"]) : null;
  return {
    cpu: {
      model: cpuModel(),
      flags: info.flags,
      features: cpuFeatures(),
      cores: os.cpus().length,
      online: os.availableParallelism(),
      mhz: info.mhz,
    },
    memory: { totalBytes: os.totalmem() },
    kernel: { release: os.release(), version: os.version(), machine: os.machine() },
    os: osName(),
    compiler: lib.compiler,
    library: { path: lib.path, variant: lib.variant, version: lib.version, flags: lib.flags },
    simd: `${simd.impl()} (${simd.reason()})`,
    bun: { version: Bun.version, revision: Bun.revision },
    git: { commit, dirty: status === null ? null : status.length > 0, branch: commit ? git(["rev-parse", "--abbrev-ref", "HEAD"]) : null },
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    nsPerTick: native().aether_bench_ns_per_tick(),
  };
}

/** One line for a terminal or a report header. */
export function environmentLine(e: Environment): string {
  const flags = NOTABLE_FLAGS.filter((f) => e.cpu.flags.includes(f) && f !== "hypervisor");
  const vm = e.cpu.flags.includes("hypervisor") ? ", virtual machine" : "";
  const commit = e.git.commit ? `${e.git.commit.slice(0, 10)}${e.git.dirty ? "+dirty" : ""}` : "no git";
  return (
    `${e.cpu.model}, ${e.cpu.online}/${e.cpu.cores} cpus${vm} [${flags.join(" ")}]; Linux ${e.kernel.release}; ` +
    `${e.library.variant} ${e.library.version} built by ${e.compiler}; Bun ${e.bun.version}; ${commit}; load ${e.loadAverage.join(" ")}`
  );
}
