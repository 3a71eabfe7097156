import { Command, Option } from "clipanion";
import * as t from "typanion";
import { VARIANTS, type VariantName } from "../native/ffi.ts";
import { AetherCommand } from "../lib/command.ts";
import { buildVariant } from "../lib/build.ts";
import { printJson } from "../lib/output.ts";

export class BuildCommand extends AetherCommand {
  static override paths = [["build"]];
  static override usage = Command.Usage({
    description: "(re)build a libaether variant",
    details: `
      Builds build/<variant>/libaether[-<variant>].so with cmake-js. release is -O2 -g; asan, ubsan and tsan use
      gcc's sanitizers; msan needs clang (apt-get install clang-16 libclang-rt-16-dev). Variants never overwrite
      each other. Select one at run time with AETHER_VARIANT=<variant>, or any file with AETHER_LIB=<path>.
    `,
    examples: [
      ["Rebuild the release library", "aether build"],
      ["Build the AddressSanitizer variant", "aether build --variant asan"],
    ],
  });

  variant = Option.String("--variant", "release", {
    description: "release, asan, ubsan, tsan or msan",
    validator: t.isEnum(Object.keys(VARIANTS) as VariantName[]),
  });
  json = Option.Boolean("--json", false, { description: "print JSON" });

  async execute(): Promise<number> {
    const t0 = performance.now();
    const path = buildVariant({ variant: this.variant as VariantName, quiet: this.json });
    const seconds = (performance.now() - t0) / 1000;
    if (this.json) printJson({ variant: this.variant, path, seconds });
    else this.out(`built ${this.variant}: ${path} (${seconds.toFixed(1)} s)`);
    return 0;
  }
}
