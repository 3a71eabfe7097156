// Every component's self-check, in the order `aether check` runs them.
import { allocCheck } from "./alloc.ts";
import { stressCheck } from "./stress.ts";
import type { CheckDef } from "./types.ts";

export const CHECKS: CheckDef[] = [allocCheck, stressCheck];
