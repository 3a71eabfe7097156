// command.ts: what every aether command shares.
import { Command, UsageError } from "clipanion";
import { closeSync, openSync } from "node:fs";
import { resolve } from "node:path";

export { UsageError };

export abstract class AetherCommand extends Command {
  /** Write a line to stdout. */
  protected out(line = ""): void {
    this.context.stdout.write(`${line}\n`);
  }
  /** Write a line to stderr. */
  protected err(line: string): void {
    this.context.stderr.write(`${line}\n`);
  }
}

/** A user's value quoted for a one-line message: control characters (a newline) are escaped, never printed. */
function shown(value: string): string {
  return /[\u0000-\u001f\u007f]/.test(value) ? JSON.stringify(value) : `'${value}'`;
}

/** Parse a non-negative integer flag value ("64", "1k", "4M", "2g"), or throw a UsageError naming the flag. */
export function parseCount(flag: string, value: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const m = /^(\d+)([kmg]i?b?)?$/i.exec(value.trim());
  if (!m) throw new UsageError(`${flag} expects a whole number (optionally with k, m or g), got ${shown(value)}`);
  const mult = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "").charAt(0).toLowerCase()] ?? 1;
  const n = Number(m[1]) * mult;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be in [${min}, ${max}], got ${shown(value)}`);
  return n;
}

/** Parse a positive duration in seconds ("0.5", "10"). */
export function parseSeconds(flag: string, value: string, max = 86400): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new UsageError(`${flag} expects seconds in (0, ${max}], got ${shown(value)}`);
  return n;
}

/** A file a command will write: its folder must exist and the file must open for appending (it is created
 * empty if it did not exist). Checked up front, so a bad path is a usage error, not a failure at the end. */
export function appendableFile(flag: string, path: string): string {
  try {
    closeSync(openSync(path, "a"));
  } catch (e) {
    throw new UsageError(`${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}: cannot write there`);
  }
  return resolve(path);
}
