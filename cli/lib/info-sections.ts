// info-sections.ts: what each component adds to `aether info` (the SIMD dispatch choice, device backends...).
// Each entry is a name and a function returning a JSON-serializable value.
import { simd } from "../native/qstate.ts";
import { stack } from "../native/stack.ts";
import { formatBytes } from "./output.ts";

const SECTIONS: [string, () => unknown][] = [
  ["simd", () => simd.info()],
  ["stack", () => {
    const i = stack.info();
    return `${formatBytes(i.size)} ${i.isMain ? "main-thread stack (RLIMIT_STACK)" : "thread stack"}, ${formatBytes(i.remaining)} left, probe margin ${formatBytes(i.margin)}`;
  }],
];

export function infoSections(): Record<string, unknown> {
  return Object.fromEntries(SECTIONS.map(([name, fn]) => [name, fn()]));
}
