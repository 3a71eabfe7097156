// Every builtin fuzz target (the Bun-side engine, `aether fuzz --engine builtin`). A target is one file here
// plus its seed corpus under fuzz/corpus/<name>/ (shared with the C target of the same name, if any).
import { allocTarget } from "./alloc.ts";
import { benchTargetsTarget } from "./bench-targets.ts";
import { callgraphTarget } from "./callgraph.ts";
import { devpoolTarget } from "./devpool.ts";
import { numbersTarget } from "./numbers.ts";
import { poolTarget } from "./pool.ts";
import { queueTarget } from "./queue.ts";
import { selftestTarget } from "./selftest.ts";
import { simdTarget } from "./simd.ts";
import type { BuiltinTarget } from "./types.ts";

export const BUILTIN_TARGETS: BuiltinTarget[] = [allocTarget, simdTarget, queueTarget, poolTarget, devpoolTarget, numbersTarget, callgraphTarget, benchTargetsTarget] as BuiltinTarget[];
// The engine's own test target (see selftest.ts), only when asked for.
if (process.env.AETHER_FUZZ_SELFTEST === "1") BUILTIN_TARGETS.push(selftestTarget as BuiltinTarget);
