import { Command, Option } from "clipanion";
import { cpuFeatures, cpuModel, libraryInfo } from "../native/system.ts";
import { VARIANTS, variantPath } from "../native/ffi.ts";
import { existsSync } from "node:fs";
import { AetherCommand } from "../lib/command.ts";
import { color, printJson, table } from "../lib/output.ts";
import { findClang, firstVersionLine, gccRuntime } from "../lib/tools.ts";
import { infoLines, infoSections } from "../lib/info-sections.ts";

export class InfoCommand extends AetherCommand {
  static override paths = [["info"]];
  static override usage = Command.Usage({
    description: "show the library, its build, the CPU and the optional tools found",
    details: `
      Prints the libaether in use (path, variant, compiler and flags), the CPU features that select the SIMD
      kernels, the Bun version, every library variant built so far, and which optional tools are present:
      clang with libFuzzer and MemorySanitizer, and gcc's sanitizer runtimes.
    `,
    examples: [
      ["Show everything", "aether info"],
      ["Machine-readable", "aether info --json"],
    ],
  });

  json = Option.Boolean("--json", false, { description: "print JSON" });

  async execute(): Promise<number> {
    const lib = libraryInfo();
    const clang = findClang();
    const info = {
      library: lib,
      variants: Object.fromEntries(
        Object.values(VARIANTS).map((v) => [v.name, existsSync(variantPath(v.name)) ? variantPath(v.name) : null]),
      ),
      cpu: { model: cpuModel(), features: cpuFeatures() },
      bun: Bun.version,
      tools: {
        gcc: firstVersionLine("gcc") ?? null,
        clang: clang ? { path: clang.path, version: clang.version, libFuzzer: clang.libFuzzer, msan: clang.msan } : null,
        runtimes: {
          asan: gccRuntime("libasan.so") ?? null,
          ubsan: gccRuntime("libubsan.so") ?? null,
          tsan: gccRuntime("libtsan.so") ?? null,
        },
      },
      ...infoSections(),
    };
    if (this.json) {
      printJson(info);
      return 0;
    }
    const yes = (b: boolean | null | undefined | string) => (b ? color.green("yes") : color.yellow("no"));
    const features = Object.entries(info.cpu.features)
      .map(([k, v]) => (v ? color.green(k) : color.dim(`-${k}`)))
      .join(" ");
    this.out(
      table([
        ["library", `${lib.path} (${lib.variant}, ${lib.version})`],
        ["compiler", lib.compiler],
        ["flags", lib.flags],
        ["cpu", info.cpu.model],
        ["features", features],
        ["bun", info.bun],
        ...Object.entries(info.variants).map(([k, v]) => [`variant ${k}`, v ?? color.dim("not built")]),
        ["gcc", info.tools.gcc ?? color.yellow("not found")],
        ["clang", clang ? `${clang.version} (${clang.path})` : color.yellow("not found")],
        ["libFuzzer", yes(clang?.libFuzzer)],
        ["msan runtime", yes(clang?.msan)],
        ["asan runtime", info.tools.runtimes.asan ?? color.yellow("not found")],
        ["ubsan runtime", info.tools.runtimes.ubsan ?? color.yellow("not found")],
        ["tsan runtime", info.tools.runtimes.tsan ?? color.yellow("not found")],
        ...infoLines(),
      ]),
    );
    return 0;
  }
}
