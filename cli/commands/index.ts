// Every aether command, in the order `aether --help` lists them.
import { AuditVerifyCommand } from "./audit.ts";
import { BenchCommand } from "./bench.ts";
import { BuildCommand } from "./build.ts";
import { CheckCommand } from "./check.ts";
import { FuzzCommand } from "./fuzz.ts";
import { InfoCommand } from "./info.ts";
import { LayoutCommand } from "./layout.ts";
import { PoolsDemoCommand, PoolsReplayCommand } from "./pools.ts";
import { RunCommand } from "./run.ts";
import { SanitizeCommand } from "./sanitize.ts";
import { SimdCommand } from "./simd.ts";
import { StackCommand } from "./stack.ts";
import { StressCommand } from "./stress.ts";

export const COMMANDS = [
  CheckCommand,
  InfoCommand,
  BuildCommand,
  RunCommand,
  StressCommand,
  SimdCommand,
  PoolsDemoCommand,
  PoolsReplayCommand,
  AuditVerifyCommand,
  StackCommand,
  LayoutCommand,
  FuzzCommand,
  BenchCommand,
  SanitizeCommand,
];
