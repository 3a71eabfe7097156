// bench-targets: the oracle for bench/targets.json's parser (parseTargets in cli/lib/bench/targets.ts, issue 8),
// ready for when that parser lands: move this file to cli/lib/fuzz/ts/bench-targets.ts and add a builtin target
// (like builtin/numbers.ts) and a fuzz/jazzer/bench-targets.ts that call checkBenchTargets. Checked for any
// text: parseTargets returns targets that satisfy the documented shape, or throws TargetsError with a one-line
// message naming the file, never another exception; parsing its own output again gives the same targets.
import { parseTargets, TargetsError } from "../../cli/lib/bench/targets.ts";

const SUITES = ["alloc", "ffi", "simd", "run", "devpool"];

export function checkBenchTargets(data: Uint8Array): string {
  const text = new TextDecoder().decode(data);
  let parsed;
  try {
    parsed = parseTargets(text, "t.json", SUITES);
  } catch (e) {
    if (!(e instanceof TargetsError)) throw new Error(`parseTargets threw ${(e as Error).name}: ${(e as Error).message}`);
    if (!e.message.startsWith("t.json: ") || e.message.includes("\n")) throw new Error(`a targets error that is not one line naming the file: ${JSON.stringify(e.message)}`);
    return `refused: ${e.message}`;
  }
  const ids = new Set<string>();
  for (const t of parsed.targets) {
    if (!/^[\w.:-]+$/.test(t.id) || ids.has(t.id)) throw new Error(`bad or repeated id ${JSON.stringify(t.id)}`);
    ids.add(t.id);
    if (!SUITES.includes(t.figure.split("/")[0]!)) throw new Error(`figure ${t.figure} of an unknown suite`);
    if (!(t.threshold > 0) || !Number.isFinite(t.threshold)) throw new Error(`threshold ${t.threshold}`);
    if ((t.comparison === "ratio") !== (t.stat === "ratio")) throw new Error(`comparison ${t.comparison} with stat ${t.stat}`);
    if (t.op !== undefined && t.op !== "<=" && t.op !== ">=") throw new Error(`op ${t.op}`);
  }
  const again = parseTargets(JSON.stringify({ version: 1, targets: parsed.targets.map((t) => ({ ...t, stat: t.comparison === "ratio" ? undefined : t.stat })) }), "t.json", SUITES);
  if (JSON.stringify(again.targets) !== JSON.stringify(parsed.targets)) throw new Error("re-parsing the parsed targets changed them");
  return `${parsed.targets.length} target(s)`;
}
