// system.ts: what the loaded library is and what the CPU can do.
import { loadedLibrary, native } from "./ffi.ts";

export const CPU_FEATURES = ["sse4.2", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"] as const;
export type CpuFeature = (typeof CPU_FEATURES)[number];

export interface LibraryInfo {
  path: string;
  variant: string;
  version: string;
  compiler: string;
  flags: string;
}

export function libraryInfo(): LibraryInfo {
  const n = native();
  const { path } = loadedLibrary();
  return {
    path,
    variant: String(n.aether_variant()),
    version: String(n.aether_version()),
    compiler: String(n.aether_build_compiler()),
    flags: String(n.aether_build_flags()),
  };
}

export function cpuFeatures(): Record<CpuFeature, boolean> {
  const bits = native().aether_cpu_features();
  return Object.fromEntries(CPU_FEATURES.map((f, i) => [f, (bits & (1 << i)) !== 0])) as Record<CpuFeature, boolean>;
}

export function cpuModel(): string {
  const out = new Uint8Array(64);
  const n = native().aether_cpu_model(out, out.length);
  return n > 0 ? Buffer.from(out.subarray(0, n)).toString("utf8") : "unknown";
}
