// info-sections.ts: what each component adds to `aether info` (the SIMD dispatch choice, device backends...).
// Each entry is a name and a function returning a JSON-serializable value.
import { deviceBackends } from "../native/devpool.ts";
import { simd } from "../native/qstate.ts";
import { stack } from "../native/stack.ts";
import { formatBytes } from "./output.ts";

// name, its value for --json, and (where the value is not already one line) how the table shows it
const SECTIONS: [string, () => unknown, ((v: never) => string)?][] = [
  ["simd", () => simd.info(), (i: ReturnType<typeof simd.info>) =>
    `${i.impl} (${i.reason}; available: ${i.available.join(", ")}; ${i.width} floats per vector)`],
  ["device backends", deviceBackendsLine],
  ["stack", () => {
    const i = stack.info();
    return `${formatBytes(i.size)} ${i.isMain ? "main-thread stack (RLIMIT_STACK)" : "thread stack"}, ${formatBytes(i.remaining)} left, probe margin ${formatBytes(i.margin)}`;
  }],
];

/** One line: each backend's verdict (device name, or why it cannot be used). */
function deviceBackendsLine(): string {
  return deviceBackends()
    .map((d) => (d.available ? `${d.backend}: ${d.devices} x ${d.name}` : `${d.backend}: ${d.status === "AETHER_ERR_NO_DEVICE" ? "no device" : "absent"} (${d.message})`))
    .join("; ");
}

export function infoSections(): Record<string, unknown> {
  return Object.fromEntries(SECTIONS.map(([name, fn]) => [name, fn()]));
}

/** The same, each as one line of text for the human table. */
export function infoLines(): [string, string][] {
  return SECTIONS.map(([name, fn, text]) => {
    const v = fn();
    return [name, text ? text(v as never) : typeof v === "string" ? v : JSON.stringify(v)];
  });
}
