// Every aether command, in the order `aether --help` lists them, each loaded only when needed: a command's
// module pulls in its whole subsystem (FFI wrappers, bench suites, fuzz engines), and `aether run -- prog`
// should not pay for the others before the program starts.
import type { CommandClass } from "clipanion";

interface CommandModule {
  /** the first word of the command's paths */
  word: string;
  load: () => Promise<CommandClass[]>;
}

const MODULES: CommandModule[] = [
  { word: "check", load: async () => [(await import("./check.ts")).CheckCommand] },
  { word: "info", load: async () => [(await import("./info.ts")).InfoCommand] },
  { word: "build", load: async () => [(await import("./build.ts")).BuildCommand] },
  { word: "run", load: async () => [(await import("./run.ts")).RunCommand] },
  { word: "stress", load: async () => [(await import("./stress.ts")).StressCommand] },
  { word: "simd", load: async () => [(await import("./simd.ts")).SimdCommand] },
  {
    word: "pools",
    load: async () => {
      const m = await import("./pools.ts");
      return [m.PoolsDemoCommand, m.PoolsReplayCommand];
    },
  },
  { word: "audit", load: async () => [(await import("./audit.ts")).AuditVerifyCommand] },
  { word: "stack", load: async () => [(await import("./stack.ts")).StackCommand] },
  { word: "layout", load: async () => [(await import("./layout.ts")).LayoutCommand] },
  { word: "fuzz", load: async () => [(await import("./fuzz.ts")).FuzzCommand] },
  { word: "bench", load: async () => [(await import("./bench.ts")).BenchCommand] },
  { word: "sanitize", load: async () => [(await import("./sanitize.ts")).SanitizeCommand] },
];

/** The commands argv can reach: the one its first word names, or (help, version, a mistake) all of them. */
export async function loadCommands(argv: string[] = []): Promise<CommandClass[]> {
  const named = MODULES.filter((m) => m.word === argv[0]);
  const wanted = named.length ? named : MODULES;
  return (await Promise.all(wanted.map((m) => m.load()))).flat();
}
