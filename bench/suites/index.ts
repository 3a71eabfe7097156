// Every `aether bench` suite, in the order a full run takes them. Adding a suite is one module under
// bench/suites/ exporting a Suite (cli/lib/bench/types.ts) and one line here.
import type { Suite } from "../../cli/lib/bench/types.ts";
import { allocSuite } from "./alloc.ts";
import { devpoolSuite } from "./devpool.ts";
import { ffiSuite } from "./ffi.ts";
import { layoutSuite } from "./layout.ts";
import { poolSuite } from "./pool.ts";
import { queuesSuite } from "./queues.ts";
import { runSuite } from "./run.ts";
import { simdSuite } from "./simd.ts";

export const SUITES: Suite[] = [allocSuite, ffiSuite, queuesSuite, poolSuite, simdSuite, devpoolSuite, layoutSuite, runSuite];

export function findSuite(name: string): Suite | undefined {
  return SUITES.find((s) => s.name === name);
}
