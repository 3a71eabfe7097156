// Every component's self-check, in the order `aether check` runs them.
import { allocCheck } from "./alloc.ts";
import { benchCheck } from "./bench.ts";
import { devpoolCheck } from "./devpool.ts";
import { fuzzCheck } from "./fuzz.ts";
import { layoutCheck } from "./layout.ts";
import { runCheck } from "./run.ts";
import { sanitizeCheck } from "./sanitize.ts";
import { simdCheck } from "./simd.ts";
import { stackCheck } from "./stack.ts";
import { stressCheck } from "./stress.ts";
import type { CheckDef } from "./types.ts";

export const CHECKS: CheckDef[] = [
  allocCheck,
  runCheck,
  stressCheck,
  simdCheck,
  devpoolCheck,
  stackCheck,
  layoutCheck,
  benchCheck,
  fuzzCheck,
  sanitizeCheck,
];
