// Every aether command, in the order `aether --help` lists them.
import { BuildCommand } from "./build.ts";
import { CheckCommand } from "./check.ts";
import { InfoCommand } from "./info.ts";
import { RunCommand } from "./run.ts";
import { StressCommand } from "./stress.ts";

export const COMMANDS = [CheckCommand, InfoCommand, BuildCommand, RunCommand, StressCommand];
