// output.ts: colours (off with NO_COLOR or when stdout is not a terminal) and plain-text tables.
import { writeSync } from "node:fs";
import pc from "picocolors";

export const colorEnabled = !("NO_COLOR" in process.env) && process.stdout.isTTY === true;
export const color = pc.createColors(colorEnabled);

/** Write everything to a file descriptor before returning. process.stdout.write on a pipe completes later, and
 * a command that exits right after a large --json output would cut it short; a blocking write cannot. A
 * descriptor left non-blocking by another process is waited on, not given up on. */
export function writeFully(fd: number, text: string): void {
  let buf = Buffer.from(text, "utf8");
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (buf.length > 0) {
    try {
      const n = writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Atomics.wait(pause, 0, 0, 2);
    }
  }
}
export const writeOut = (text: string) => writeFully(1, text);
export const writeErr = (text: string) => writeFully(2, text);

/** A stream-shaped object over a descriptor, for clipanion's context (it only calls write). */
export function blockingStream(fd: number): NodeJS.WriteStream {
  const base = fd === 1 ? process.stdout : process.stderr;
  return Object.assign(Object.create(base), {
    write(chunk: string | Uint8Array, ...rest: unknown[]): boolean {
      writeFully(fd, typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      cb?.();
      return true;
    },
  }) as NodeJS.WriteStream;
}

export function printJson(value: unknown): void {
  writeOut(`${JSON.stringify(value, null, 2)}\n`);
}

// ANSI escapes do not take up columns.
const ANSI = /\x1b\[[0-9;]*m/g;
const width = (s: string) => s.replace(ANSI, "").length;

/** Left-aligned columns separated by two spaces; numbers in columns listed in right are right-aligned. */
export function table(rows: string[][], right: number[] = []): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, width(cell))));
  return rows
    .map((row) =>
      row
        .map((cell, i) => {
          const pad = " ".repeat((widths[i] ?? 0) - width(cell));
          if (i === row.length - 1 && !right.includes(i)) return cell;
          return right.includes(i) ? pad + cell : cell + pad;
        })
        .join("  "),
    )
    .join("\n");
}

export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return "-";
  if (ns < 1000) return `${ns.toFixed(ns < 10 ? 2 : 1)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(2)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(2)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatRate(perSec: number, unit = "ops"): string {
  if (perSec >= 1e9) return `${(perSec / 1e9).toFixed(2)} G${unit}/s`;
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(2)} M${unit}/s`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(1)} k${unit}/s`;
  return `${perSec.toFixed(0)} ${unit}/s`;
}

export type Verdict = "pass" | "fail" | "skip";
export function verdictText(v: Verdict): string {
  return v === "pass" ? color.green("pass") : v === "fail" ? color.red(color.bold("FAIL")) : color.yellow("skip");
}
