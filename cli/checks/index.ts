// Every component's self-check, in the order `aether check` runs them.
import { allocCheck } from "./alloc.ts";
import { devpoolCheck } from "./devpool.ts";
import type { CheckDef } from "./types.ts";

export const CHECKS: CheckDef[] = [allocCheck, devpoolCheck];
