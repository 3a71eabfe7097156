// callgraph.ts (builtin): `aether stack`'s .su/.ci parsers and call-graph analysis (see ../ts/callgraph.ts).
import { FuzzFailure } from "../producer.ts";
import { checkCallgraph } from "../ts/callgraph.ts";
import type { BuiltinTarget } from "./types.ts";

export const callgraphTarget: BuiltinTarget<Uint8Array> = {
  name: "callgraph",
  description: "aether stack's .su/.ci parsers and call-graph analysis against brute force (cycles, guards, depths)",
  maxLen: 160,
  decode: (data) => ({ head: new Uint8Array(0), ops: [data] }),
  encode: (p) => p.ops[0] ?? new Uint8Array(0),
  simplify: (d) => (d.length > 1 ? [d.subarray(0, d.length - 1), d.subarray(0, Math.ceil(d.length / 2))] : []),
  describe: (d) => `${d.length} bytes`,
  run(p, log) {
    try {
      log?.(checkCallgraph(p.ops[0] ?? new Uint8Array(0)));
    } catch (e) {
      if ((e as Error).name === "FuzzFailure") throw new FuzzFailure((e as Error).message);
      throw e;
    }
  },
};
