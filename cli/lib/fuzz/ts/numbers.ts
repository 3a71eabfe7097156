// numbers.ts: the oracle for the CLI's number parsers (parseCount, parseSeconds in cli/lib/command.ts), which
// every command runs on user input. Shared by the builtin engine (Bun) and the Jazzer.js target (Node), so it
// imports nothing Bun-specific. Checked for any input string:
// - a value is accepted exactly when an independent reading of the documented grammar accepts it
//   (parseCount: optional blanks, decimal digits, an optional k/m/g multiplier with optional "i" and "b",
//   within [min, max] and a safe integer; parseSeconds: a finite number in (0, max]), and then equals it;
// - a rejected value throws clipanion's UsageError (one line, exit 2), never another exception.
import { UsageError } from "clipanion";
import { parseCount, parseSeconds } from "../../command.ts";

export class NumbersFailure extends Error {
  override name = "FuzzFailure";
}

function expectCount(value: string, min: number, max: number): number | undefined {
  const s = value.trim();
  let i = 0;
  while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
  if (i === 0) return undefined;
  let mult = 1;
  let rest = s.slice(i).toLowerCase();
  if (rest.length) {
    const m = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[rest[0] as "k" | "m" | "g"];
    if (m === undefined) return undefined;
    mult = m;
    rest = rest.slice(1);
    if (rest.startsWith("i")) rest = rest.slice(1);
    if (rest.startsWith("b")) rest = rest.slice(1);
    if (rest.length) return undefined;
  }
  const n = Number(s.slice(0, i)) * mult;
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
}

/** Decode bytes into (which parser, bounds, value) and check it. Throws NumbersFailure on a violation. */
export function checkNumbers(data: Uint8Array): string {
  const sel = data[0] ?? 0;
  const bound = data[1] ?? 0;
  const value = new TextDecoder().decode(data.subarray(2));
  const seconds = (sel & 1) === 1;
  const min = seconds ? 0 : [0, 1, 2, 64][sel >> 1 & 3]!;
  const max = [Number.MAX_SAFE_INTEGER, 86400, 1 << 20, 0xffffffff, 2, 100, 1e9, 7][bound & 7]!;
  let got: number | undefined;
  let threw: unknown;
  try {
    got = seconds ? parseSeconds("--x", value, max) : parseCount("--x", value, min, max);
  } catch (e) {
    threw = e;
  }
  if (threw !== undefined && !(threw instanceof UsageError))
    throw new NumbersFailure(`${seconds ? "parseSeconds" : "parseCount"}(${JSON.stringify(value)}) threw ${(threw as Error).name}: ${(threw as Error).message}`);
  if (threw instanceof UsageError && /\n/.test(threw.message)) throw new NumbersFailure(`a usage error spans lines: ${JSON.stringify(threw.message)}`);
  const want = seconds ? (() => {
    const n = Number(value);
    return Number.isFinite(n) && n > 0 && n <= max ? n : undefined;
  })() : expectCount(value, min, max);
  const call = `${seconds ? "parseSeconds" : `parseCount[${min}, ${max}]`}(${JSON.stringify(value)})`;
  if (want === undefined && got !== undefined) throw new NumbersFailure(`${call} accepted ${got}; the grammar rejects it`);
  if (want !== undefined && got !== want) throw new NumbersFailure(`${call} gave ${got ?? "a usage error"}; the grammar says ${want}`);
  return `${call} -> ${got ?? "usage error"}`;
}
