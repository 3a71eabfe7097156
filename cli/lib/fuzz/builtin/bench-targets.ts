// bench-targets.ts (builtin): bench/targets.json's parser (see ../ts/bench-targets.ts). Builtin only: the parser
// lives beside the FFI loader, which Node (and so Jazzer.js) cannot import.
import { checkBenchTargets } from "../ts/bench-targets.ts";
import { bytesTarget } from "./bytes-target.ts";

export const benchTargetsTarget = bytesTarget({
  name: "bench-targets",
  description: "bench/targets.json's parser: documented shape or a one-line TargetsError, never another exception",
  maxLen: 80,
  check: checkBenchTargets,
});
