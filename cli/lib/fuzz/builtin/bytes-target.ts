// bytes-target.ts: a builtin target whose whole input is one operation, for the checks of the CLI's own
// TypeScript parsers (../ts/*.ts). Those checks run under Jazzer.js too, where FuzzFailure is another module's
// class, so a failure is recognised by its name and rethrown as this engine's FuzzFailure.
import { FuzzFailure } from "../producer.ts";
import type { BuiltinTarget, BytesTargetSpec } from "./types.ts";

const halves = (d: Uint8Array) => (d.length > 1 ? [d.subarray(0, d.length - 1), d.subarray(0, Math.ceil(d.length / 2))] : []);

export function bytesTarget(spec: BytesTargetSpec): BuiltinTarget<Uint8Array> {
  return {
    name: spec.name,
    description: spec.description,
    maxLen: spec.maxLen,
    decode: (data) => ({ head: new Uint8Array(0), ops: [data] }),
    encode: (p) => p.ops[0] ?? new Uint8Array(0),
    simplify: spec.simplify ?? halves,
    describe: spec.describe ?? ((d) => `${d.length} bytes`),
    run(p, log) {
      try {
        const line = spec.check(p.ops[0] ?? new Uint8Array(0));
        log?.(line);
      } catch (e) {
        if ((e as Error).name === "FuzzFailure") throw new FuzzFailure((e as Error).message);
        throw e;
      }
    },
  };
}
