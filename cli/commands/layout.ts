import { Command, Option } from "clipanion";
import { existsSync, readFileSync, statSync } from "node:fs";
import { AetherError } from "../native/ffi.ts";
import { AetherCommand, UsageError } from "../lib/command.ts";
import { analyzeLayout, FRESH, hex, type FileLayout } from "../lib/elf.ts";
import { color, printJson, table } from "../lib/output.ts";
import type { LayoutReport } from "../native/layout.ts";

type Outcome = { path: string; ok: true; layout: FileLayout } | { path: string; ok: false; code: string; message: string };

/** A size as a JSON number when exact, else as a decimal string. */
const num = (v: bigint): number | string => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());

function reportJson(r: LayoutReport) {
  return {
    valid: r.valid,
    regions: r.regions,
    totalSize: num(r.totalSize),
    minBase: hex(r.minBase),
    maxEnd: hex(r.maxEnd),
    misaligned: r.misaligned,
    overlappingPairs: r.overlappingPairs,
    overflowing: r.overflowing,
    utilization: r.utilization,
    fragmentation: r.fragmentation,
  };
}

function toJson(o: Outcome) {
  if (!o.ok) return { path: o.path, ok: false, error: { code: o.code, message: o.message } };
  const l = o.layout;
  return {
    path: o.path,
    ok: true,
    type: l.type,
    machine: l.machine,
    imageBase: hex(l.imageBase),
    sections: l.sections.map((s) => ({
      index: s.index,
      name: s.name,
      type: s.type,
      address: hex(s.address),
      offset: num(s.offset),
      size: num(s.size),
      entsize: num(s.entsize),
      flags: s.flags,
      link: s.link,
      info: s.info,
      align: num(s.align),
      permissions: s.permissions,
      allocated: s.allocated,
      aligned: s.aligned,
      tlsTemplate: s.tlsTemplate,
      freshAddress: s.freshAddress === null ? null : hex(s.freshAddress),
    })),
    segments: l.segments.map((g) => ({
      type: g.type,
      flags: g.flags.replace(/ /g, ""),
      offset: num(g.offset),
      vaddr: hex(g.vaddr),
      filesz: num(g.filesz),
      memsz: num(g.memsz),
      align: num(g.align),
    })),
    own: l.own ? { ...reportJson(l.own), overlaps: l.own.overlaps } : null,
    fresh: { ...reportJson(l.fresh), base: hex(l.fresh.base) },
  };
}

export class LayoutCommand extends AetherCommand {
  static override paths = [["layout"]];
  static override usage = Command.Usage({
    description: "memory layout of ELF files: sections, validation, utilization, a fresh layout",
    details: `
      Parses each ELF file (64-bit little-endian only; anything else is refused with its reason) and prints its
      sections (address, offset, size, alignment, readelf's flags and the permissions SHF_ALLOC, SHF_WRITE and
      SHF_EXECINSTR give), its program headers, and the validation of "Memory Allocation Mathematical
      Specification" over the allocated sections: every one aligned to its sh_addralign, no two overlapping
      (found by an O(n log n) sweep), none past 2^64. Utilization is sum(size) / (max end - image base) and
      fragmentation 1 - sum(size) / (max end - min base). Beside the file's own addresses (the Fresh column) is
      the layout the specification computes: base 0x400000, the first section at 0x401000, executable then
      read-only then read-write then zero-fill sections, each group page-aligned, sequential inside.

      A zero-fill TLS template (.tbss) takes no address space (the linker lays it over what follows), so it
      overlaps nothing. A relocatable object (.o) has no addresses yet: only its fresh layout is shown.

      Exit code: 0 when every file parsed and its layout is valid, 1 when a file was refused (not ELF, 32-bit,
      big-endian, truncated, malformed) or its layout fails validation, 2 for a missing file.
    `,
    examples: [
      ["The layout of ls", "aether layout /bin/ls"],
      ["Several files, as JSON", "aether layout --json build/release/libaether.so /usr/lib/x86_64-linux-gnu/libc.so.6"],
    ],
  });

  json = Option.Boolean("--json", false, { description: "print JSON" });
  segments = Option.Boolean("--segments", true, { description: "print the program headers (--no-segments to omit)" });
  files = Option.Rest({ required: 1, name: "elf-file" });

  async execute(): Promise<number> {
    for (const f of this.files) {
      if (!existsSync(f)) throw new UsageError(`no such file: ${f}`);
      if (!statSync(f).isFile()) throw new UsageError(`not a regular file: ${f}`);
    }
    const outcomes: Outcome[] = this.files.map((path) => {
      try {
        return { path, ok: true, layout: analyzeLayout(readFileSync(path)) };
      } catch (e) {
        if (e instanceof AetherError) return { path, ok: false, code: e.code, message: e.message.replace(/^ELF: /, "") };
        const err = e as NodeJS.ErrnoException;
        if (err.code) return { path, ok: false, code: "AETHER_ERR_IO", message: `cannot read: ${err.message}` };
        throw e;
      }
    });
    const failed = outcomes.filter((o) => !o.ok || (o.layout.own !== null && !o.layout.own.valid)).length;
    if (this.json) {
      printJson({ valid: failed === 0, files: outcomes.map(toJson) });
    } else {
      outcomes.forEach((o, i) => {
        if (i > 0) this.out();
        if (o.ok) this.print(o.path, o.layout);
      });
    }
    for (const o of outcomes) if (!o.ok) this.err(`aether layout: ${o.code}: ${o.path}: ${o.message}`);
    return failed > 0 ? 1 : 0;
  }

  private print(path: string, l: FileLayout): void {
    const alloc = l.sections.filter((s) => s.allocated);
    this.out(
      `${color.bold(path)}: ELF64 little-endian ${l.type} ${l.machine}, ${l.sections.length} sections (${alloc.length} allocated), ` +
        `${l.segments.length} program headers, image base ${hex(l.imageBase)}`,
    );
    if (l.sections.length > 0) {
      const rows = [["[Nr]", "Name", "Type", "Address", "Off", "Size", "ES", "Flg", "Lk", "Inf", "Al", "Perm", "Fresh"]];
      for (const s of l.sections) {
        const bad = s.allocated && !s.aligned;
        rows.push([
          `[${String(s.index).padStart(2)}]`,
          s.name,
          s.type,
          hex(s.address, 8),
          hex(s.offset, 6),
          hex(s.size, 6),
          s.entsize.toString(16).padStart(2, "0"),
          s.flags,
          String(s.link),
          String(s.info),
          bad ? color.red(`${s.align}!`) : String(s.align),
          s.permissions,
          s.tlsTemplate ? "(tls)" : s.freshAddress === null ? "" : hex(s.freshAddress, 8),
        ]);
      }
      this.out(table(rows, [8, 9, 10]).replace(/^/gm, "  "));
    }
    if (this.segments && l.segments.length > 0) {
      this.out("  program headers:");
      const rows = [["Type", "Offset", "VirtAddr", "FileSiz", "MemSiz", "Flg", "Align"]];
      for (const g of l.segments) rows.push([g.type, hex(g.offset, 6), hex(g.vaddr, 8), hex(g.filesz, 6), hex(g.memsz, 6), g.flags, hex(g.align)]);
      this.out(table(rows).replace(/^/gm, "    "));
    }
    const measures = (r: LayoutReport, base: bigint) =>
      `utilization ${r.utilization.toFixed(4)}, fragmentation ${r.fragmentation.toFixed(4)} ` +
      `(${r.totalSize} bytes in ${r.regions} regions; [${hex(r.minBase)}, ${hex(r.maxEnd)}), base ${hex(base)})`;
    if (l.own === null) {
      this.out(`  own layout: ${color.dim("none: a relocatable object's sections get addresses at link time")}`);
    } else {
      const o = l.own;
      const problems: string[] = [];
      if (o.misaligned) {
        const bad = alloc.filter((s) => !s.aligned).map((s) => `${s.name || `[${s.index}]`} at ${hex(s.address)} (align ${s.align})`);
        problems.push(`${o.misaligned} misaligned: ${bad.slice(0, 5).join(", ")}`);
      }
      if (o.overlappingPairs) problems.push(`${o.overlappingPairs} overlapping pair(s): ${o.overlaps.slice(0, 5).map(([a, b]) => `${a} / ${b}`).join(", ")}`);
      if (o.overflowing) problems.push(`${o.overflowing} past 2^64`);
      const verdict = o.valid
        ? color.green("valid")
        : color.red(color.bold("INVALID"));
      this.out(`  own layout: ${verdict}: ${o.regions} regions, ${o.valid ? "every one aligned, no two overlapping, none past 2^64" : problems.join("; ")}`);
      this.out(`    ${measures(o, l.imageBase)}`);
    }
    const f = l.fresh;
    this.out(
      `  fresh layout (base ${hex(FRESH.base)}, first at ${hex(FRESH.base + FRESH.header)}, exec -> read-only -> read-write -> zero-fill, ` +
        `page-aligned groups): ${f.valid ? color.green("valid") : color.red("INVALID")}`,
    );
    this.out(`    ${measures(f, f.base)}`);
  }
}
