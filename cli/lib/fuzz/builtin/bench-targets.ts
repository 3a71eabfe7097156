// bench-targets.ts (builtin): bench/targets.json's parser (see ../ts/bench-targets.ts). Builtin only: the parser
// lives beside the FFI loader, which Node (and so Jazzer.js) cannot import.
import { FuzzFailure } from "../producer.ts";
import { checkBenchTargets } from "../ts/bench-targets.ts";
import type { BuiltinTarget } from "./types.ts";

export const benchTargetsTarget: BuiltinTarget<Uint8Array> = {
  name: "bench-targets",
  description: "bench/targets.json's parser: documented shape or a one-line TargetsError, never another exception",
  maxLen: 80,
  decode: (data) => ({ head: new Uint8Array(0), ops: [data] }),
  encode: (p) => p.ops[0] ?? new Uint8Array(0),
  simplify: (d) => (d.length > 1 ? [d.subarray(0, d.length - 1), d.subarray(0, Math.ceil(d.length / 2))] : []),
  describe: (d) => `${d.length} bytes`,
  run(p, log) {
    try {
      log?.(checkBenchTargets(p.ops[0] ?? new Uint8Array(0)));
    } catch (e) {
      if ((e as Error).name === "FuzzFailure") throw new FuzzFailure((e as Error).message);
      throw e;
    }
  },
};
