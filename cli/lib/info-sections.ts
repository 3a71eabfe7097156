// info-sections.ts: what each component adds to `aether info` (the SIMD dispatch choice, device backends...).
// Each entry is a name and a function returning a JSON-serializable value.
import { simd } from "../native/qstate.ts";

const SECTIONS: [string, () => unknown][] = [
  ["simd", () => simd.info()],
];

export function infoSections(): Record<string, unknown> {
  return Object.fromEntries(SECTIONS.map(([name, fn]) => [name, fn()]));
}
