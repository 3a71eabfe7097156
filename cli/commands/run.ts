import { Command, Option } from "clipanion";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { plugin } from "bun";
import { AetherCommand, UsageError } from "../lib/command.ts";
import { memory } from "../native/memory.ts";

const API_PATH = resolve(import.meta.dir, "..", "native", "api.ts");
const SCRIPT = /\.(ts|js|mjs|mts|cjs)$/;

/** Let scripts outside this package `import ... from "aether-memory"`: rewrite that specifier, in files under
 * the script's folder, to this package's API (Bun's runtime plugins cannot resolve bare names). */
function provideApi(root: string): void {
  const escaped = root.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  plugin({
    name: "aether-memory-api",
    setup(build) {
      build.onLoad({ filter: new RegExp(`^${escaped}/(?!.*node_modules/).*\\.(ts|mts|js|mjs)$`) }, async (args) => {
        const src = await Bun.file(args.path).text();
        const contents = src.replace(
          /(\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)(["'])aether-memory\2/g,
          (_m, lead: string) => `${lead}${JSON.stringify(API_PATH)}`,
        );
        const loader = /\.m?ts$/.test(args.path) ? "ts" : "js";
        return { contents, loader };
      });
    },
  });
}

export class RunCommand extends AetherCommand {
  static override paths = [["run"]];
  static override usage = Command.Usage({
    description: "run a script with the runtime loaded, then report leaks",
    details: `
      Runs a TypeScript or JavaScript file in this process with libaether loaded; the script can
      \`import { memory } from "aether-memory"\`. When its top-level code (including top-level await) has
      finished, the leak report of the safe allocator is printed (aether_check_leaks) and the exit code is 1
      if anything leaked or the script threw, else 0.
    `,
    examples: [["Run the specification's example", "aether run examples/leak-check.ts"]],
  });

  script = Option.String({ required: true, name: "script" });
  args = Option.Proxy();

  async execute(): Promise<number> {
    if (!SCRIPT.test(this.script)) throw new UsageError(`'${this.script}' is not a .ts, .js or .mjs script`);
    const path = resolve(this.script);
    if (!existsSync(path)) throw new UsageError(`script not found: ${this.script}`);
    memory.init();
    const seq0 = memory.lastErrorSeq();
    provideApi(dirname(path));
    process.argv = [process.argv[0]!, path, ...this.args];
    let threw = false;
    try {
      await import(path);
    } catch (e) {
      threw = true;
      this.err(`aether run: ${this.script} threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    const leaks = memory.checkLeaks();
    const errors = memory.errors(seq0).length;
    this.err(`aether run: ${this.script} finished: ${errors} memory error(s), ${leaks} leak(s)`);
    return threw || leaks > 0 ? 1 : 0;
  }
}
