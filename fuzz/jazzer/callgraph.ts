// callgraph: aether stack's .su/.ci parsers and call-graph analysis under Jazzer.js, against brute force;
// the oracle is shared with the builtin target of the same name (cli/lib/fuzz/ts/callgraph.ts).
import { checkCallgraph } from "../../cli/lib/fuzz/ts/callgraph.ts";

export function fuzz(data: Buffer): string {
  return checkCallgraph(new Uint8Array(data.buffer, data.byteOffset, data.length));
}
