// cli.ts: the aether command line: registration, and one error policy for every command.
//   usage mistakes (unknown command or flag, bad value)  -> one line on stderr, exit 2
//   failures (a missing library, a native error, a file) -> one line on stderr, exit 1
// A stack trace is printed only with AETHER_DEBUG=1.
import { Builtins, Cli, Command, type CommandClass } from "clipanion";
import pkg from "../../package.json" with { type: "json" };
import { AetherError, LibraryError } from "../native/ffi.ts";
import { loadCommands } from "../commands/index.ts";
import { blockingStream, colorEnabled, writeErr, writeOut } from "./output.ts";

export function buildCli(commands: CommandClass[]): Cli {
  const cli = new Cli({
    binaryLabel: "aether: the Aether memory-safety runtime and its harness",
    binaryName: "aether",
    binaryVersion: pkg.version,
    enableColors: colorEnabled,
    enableCapture: false,
  });
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  for (const c of commands) cli.register(c);
  return cli;
}

function isUsageError(e: unknown): boolean {
  // clipanion marks its parse and usage errors with a `clipanion` property.
  return typeof e === "object" && e !== null && "clipanion" in e;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n").find((l) => l.trim() !== "")?.trim() ?? "unknown error";
}

export async function main(argv: string[]): Promise<number> {
  const cli = buildCli(await loadCommands(argv));
  const context = { ...Cli.defaultContext, stdin: process.stdin, stdout: blockingStream(1), stderr: blockingStream(2) };
  const debug = process.env.AETHER_DEBUG === "1";
  let command: Command;
  try {
    command = cli.process(argv, context);
  } catch (e) {
    if (debug) console.error(e);
    const path = argv.filter((a) => !a.startsWith("-")).slice(0, 1).join(" ");
    if (firstLine(e).startsWith("Command not found")) {
      const known = (await loadCommands()).flatMap((c) => c.paths ?? []).map((p) => p.join(" "));
      // A known command whose arguments matched none of its forms (a required one missing, as in `aether run --`).
      const named = known.filter((k) => argv.slice(0, k.split(" ").length).join(" ") === k).sort((a, b) => b.length - a.length)[0];
      if (named) {
        writeErr(`aether ${named}: missing or misplaced arguments (see 'aether ${named} --help')\n`);
        return 2;
      }
      const subs = known.filter((k) => k.startsWith(`${argv[0]} `));
      if (subs.length) {
        writeErr(`aether ${argv[0]}: give one of: ${subs.join(", ")} (see 'aether ${subs[0]} --help')\n`);
        return 2;
      }
      const guess = known.find((k) => k.startsWith(argv[0]?.slice(0, 2) ?? "\0"));
      const hint = guess ? `did you mean '${guess}'? ` : "";
      writeErr(`aether: unknown command '${argv[0] ?? ""}' (${hint}see 'aether --help')\n`);
      return 2;
    }
    writeErr(`aether: ${firstLine(e)} (see 'aether ${path ? `${path} ` : ""}--help')\n`);
    return 2;
  }
  if (command.help) {
    writeOut(cli.usage(command, { colored: colorEnabled, detailed: true }));
    return 0;
  }
  command.context = context;
  command.cli = {
    binaryLabel: cli.binaryLabel,
    binaryName: cli.binaryName,
    binaryVersion: cli.binaryVersion,
    enableCapture: false,
    enableColors: colorEnabled,
    definitions: () => cli.definitions(),
    error: (error, opts) => cli.error(error, opts),
    format: (colored) => cli.format(colored),
    process: (input, sub) => cli.process(input, { ...context, ...sub }),
    run: (input, sub) => cli.run(input, { ...context, ...sub }),
    usage: (cmd, opts) => cli.usage(cmd, opts),
  };
  try {
    return (await command.validateAndExecute()) ?? 0;
  } catch (e) {
    if (debug) console.error(e);
    const name = command.path.join(" ");
    if (isUsageError(e)) {
      writeErr(`aether ${name}: ${firstLine(e)} (see 'aether ${name} --help')\n`);
      return 2;
    }
    const prefix = e instanceof AetherError ? `${e.code}: ` : e instanceof LibraryError ? "" : "";
    writeErr(`aether ${name}: ${prefix}${firstLine(e)}\n`);
    return 1;
  }
}
