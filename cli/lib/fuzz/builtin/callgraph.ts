// callgraph.ts (builtin): `aether stack`'s .su/.ci parsers and call-graph analysis (see ../ts/callgraph.ts).
import { checkCallgraph } from "../ts/callgraph.ts";
import { bytesTarget } from "./bytes-target.ts";

export const callgraphTarget = bytesTarget({
  name: "callgraph",
  description: "aether stack's .su/.ci parsers and call-graph analysis against brute force (cycles, guards, depths)",
  maxLen: 160,
  check: checkCallgraph,
});
