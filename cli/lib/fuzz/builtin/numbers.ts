// numbers.ts (builtin): the CLI's number parsers (see ../ts/numbers.ts for what is checked).
import { FuzzFailure } from "../producer.ts";
import { checkNumbers } from "../ts/numbers.ts";
import type { BuiltinTarget } from "./types.ts";

export const numbersTarget: BuiltinTarget<Uint8Array> = {
  name: "cli-numbers",
  description: "the CLI's number parsers (parseCount, parseSeconds) against the documented grammar",
  maxLen: 40,
  decode: (data) => ({ head: new Uint8Array(0), ops: [data] }),
  encode: (p) => p.ops[0] ?? new Uint8Array(0),
  simplify: (d) => (d.length > 2 ? [d.subarray(0, d.length - 1), Uint8Array.from([...d.subarray(0, 2), ...d.subarray(3)])] : []),
  describe: (d) => `value ${JSON.stringify(new TextDecoder().decode(d.subarray(2)))}`,
  run(p, log) {
    try {
      const line = checkNumbers(p.ops[0] ?? new Uint8Array(0));
      log?.(line);
    } catch (e) {
      if ((e as Error).name === "FuzzFailure") throw new FuzzFailure((e as Error).message);
      throw e;
    }
  },
};
