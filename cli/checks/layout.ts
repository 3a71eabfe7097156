// Memory layout's self-check: the loaded libaether and a system binary parse, validate and get a valid fresh
// layout; a truncated copy, a 32-bit header and a non-ELF file are refused with their own error codes.
import { existsSync, readFileSync } from "node:fs";
import { analyzeLayout } from "../lib/elf.ts";
import { AetherError, loadedLibrary } from "../native/ffi.ts";
import { parseElf } from "../native/layout.ts";
import type { CheckDef, CheckResult } from "./types.ts";

function refusal(data: Uint8Array): string {
  try {
    parseElf(data);
    return "accepted";
  } catch (e) {
    return e instanceof AetherError ? e.code : `threw ${(e as Error).message}`;
  }
}

export const layoutCheck: CheckDef = {
  component: "memory layout",
  id: "layout",
  run(): CheckResult {
    const problems: string[] = [];
    const files = [loadedLibrary().path, "/bin/ls"].filter((f) => existsSync(f));
    let sections = 0;
    let utilization = 0;
    for (const f of files) {
      const l = analyzeLayout(readFileSync(f));
      sections += l.sections.filter((s) => s.allocated).length;
      if (!l.own?.valid) problems.push(`${f}: its own layout does not validate`);
      if (!l.fresh.valid) problems.push(`${f}: the fresh layout does not validate`);
      if (f === files[0]) utilization = l.own?.utilization ?? 0;
    }
    const lib = readFileSync(files[0]!);
    const class32 = Uint8Array.from(lib.subarray(0, 4096));
    class32[4] = 1;
    const expected: [string, Uint8Array, string][] = [
      ["truncated", lib.subarray(0, lib.length >> 1), "AETHER_ERR_TRUNCATED"],
      ["32-bit", class32, "AETHER_ERR_NOT_ELF"],
      ["not ELF", new TextEncoder().encode("#!/bin/sh\necho not an ELF file\n"), "AETHER_ERR_NOT_ELF"],
    ];
    for (const [what, data, code] of expected) {
      const got = refusal(data);
      if (got !== code) problems.push(`a ${what} file gave ${got}, expected ${code}`);
    }
    return {
      verdict: problems.length ? "fail" : "pass",
      figure: `${files.length} ELF files, ${sections} allocated sections valid (libaether utilization ${utilization.toFixed(3)}); truncated, 32-bit and non-ELF refused`,
      problems,
      data: { files, sections, utilization },
    };
  },
};
