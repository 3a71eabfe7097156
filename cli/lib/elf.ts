// elf.ts: what `aether layout` and `aether stack` need on top of the native ELF parser: readelf's names for
// types and flags, the symbol tables, and the memory-layout analysis of a file (its own layout validated and
// measured, beside a fresh layout computed the specification's way) through the native region engine.
import { layout, parseElf, PERM, REGION_KIND, type ElfFile, type ElfSection, type LayoutReport, type Region } from "../native/layout.ts";

export const SHT = { NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, NOBITS: 8, DYNSYM: 11 } as const;
export const SHF = { WRITE: 0x1n, ALLOC: 0x2n, EXECINSTR: 0x4n, TLS: 0x400n } as const;
export const PT_LOAD = 1;

const SECTION_TYPES: Record<number, string> = {
  0: "NULL", 1: "PROGBITS", 2: "SYMTAB", 3: "STRTAB", 4: "RELA", 5: "HASH", 6: "DYNAMIC", 7: "NOTE", 8: "NOBITS",
  9: "REL", 10: "SHLIB", 11: "DYNSYM", 14: "INIT_ARRAY", 15: "FINI_ARRAY", 16: "PREINIT_ARRAY", 17: "GROUP",
  18: "SYMTAB SECTION INDICES", 19: "RELR",
  0x6ffffff5: "GNU_ATTRIBUTES", 0x6ffffff6: "GNU_HASH", 0x6ffffff7: "GNU_LIBLIST", 0x6ffffffd: "VERDEF",
  0x6ffffffe: "VERNEED", 0x6fffffff: "VERSYM", 0x6fff4c00: "LLVM_ODRTAB", 0x6fff4c01: "LLVM_LINKER_OPTIONS",
  0x6fff4c03: "LLVM_ADDRSIG", 0x6fff4c04: "LLVM_DEPENDENT_LIBRARIES", 0x6fff4c05: "LLVM_SYMPART",
  0x6fff4c06: "LLVM_PART_EHDR", 0x6fff4c07: "LLVM_PART_PHDR", 0x6fff4c09: "LLVM_BB_ADDR_MAP", 0x6fff4c0c: "LLVM_LTO",
};
const EM_X86_64 = 62;

/** readelf's name for a section type ("PROGBITS", "GNU_HASH", "X86_64_UNWIND", "LOOS+0x...", ...). */
export function sectionTypeName(type: number, machine = EM_X86_64): string {
  const known = SECTION_TYPES[type];
  if (known) return known;
  if (type === 0x70000001 && machine === EM_X86_64) return "X86_64_UNWIND";
  const hex = (n: number) => `0x${n.toString(16)}`;
  if (type >= 0x70000000 && type <= 0x7fffffff) return `LOPROC+${hex(type - 0x70000000)}`;
  if (type >= 0x60000000 && type <= 0x6fffffff) return `LOOS+${hex(type - 0x60000000)}`;
  if (type >= 0x80000000 && type <= 0xffffffff) return `LOUSER+${hex(type - 0x80000000)}`;
  return `${hex(type)}: <unknown>`;
}

// readelf's letters, one per flag bit, in the order of the bits.
const FLAG_LETTERS: [bigint, string][] = [
  [0x1n, "W"], [0x2n, "A"], [0x4n, "X"], [0x10n, "M"], [0x20n, "S"], [0x40n, "I"], [0x80n, "L"], [0x100n, "O"],
  [0x200n, "G"], [0x400n, "T"], [0x800n, "C"], [0x200000n, "R"], [0x1000000n, "D"], [0x10000000n, "l"], [0x80000000n, "E"],
];

/** readelf -S's flag letters ("WA", "AX", "AMS", "WAT"): x for an unknown bit, o for OS-specific, p for
 * processor-specific. */
export function sectionFlagLetters(flags: bigint, machine = EM_X86_64): string {
  let out = "";
  let rest = flags;
  for (const [bit, letter] of FLAG_LETTERS) {
    if (bit === 0x10000000n && machine !== EM_X86_64) continue;
    if (flags & bit) {
      out += letter;
      rest &= ~bit;
    }
  }
  if (rest & 0x0ff00000n) {
    out += "o";
    rest &= ~0x0ff00000n;
  }
  if (rest & 0xf0000000n) {
    out += "p";
    rest &= ~0xf0000000n;
  }
  if (rest) out += "x";
  return out;
}

const SEGMENT_TYPES: Record<number, string> = {
  0: "NULL", 1: "LOAD", 2: "DYNAMIC", 3: "INTERP", 4: "NOTE", 5: "SHLIB", 6: "PHDR", 7: "TLS",
  0x6474e550: "GNU_EH_FRAME", 0x6474e551: "GNU_STACK", 0x6474e552: "GNU_RELRO", 0x6474e553: "GNU_PROPERTY",
  0x6474e554: "GNU_SFRAME",
};
export function segmentTypeName(type: number): string {
  return SEGMENT_TYPES[type] ?? `0x${type.toString(16)}`;
}
export function segmentFlagText(flags: number): string {
  return `${flags & 4 ? "R" : " "}${flags & 2 ? "W" : " "}${flags & 1 ? "E" : " "}`;
}

const FILE_TYPES: Record<number, string> = { 0: "NONE", 1: "REL", 2: "EXEC", 3: "DYN", 4: "CORE" };
const MACHINES: Record<number, string> = { 3: "i386", 40: "ARM", 62: "x86-64", 183: "AArch64", 243: "RISC-V", 258: "LoongArch" };
export function fileTypeName(type: number): string {
  return FILE_TYPES[type] ?? `0x${type.toString(16)}`;
}
export function machineName(machine: number): string {
  return MACHINES[machine] ?? `machine ${machine}`;
}

export const hex = (v: bigint, width = 0): string => `0x${v.toString(16).padStart(width, "0")}`;

// ------------------------------------------------------------------------------------------- symbols ---
export interface ElfSymbol {
  name: string;
  value: bigint;
  size: bigint;
  /** STT_*: 0 NOTYPE, 1 OBJECT, 2 FUNC, 10 GNU_IFUNC */
  type: number;
  /** STB_*: 0 LOCAL, 1 GLOBAL, 2 WEAK, 10 GNU_UNIQUE */
  bind: number;
  /** STV_*: 0 DEFAULT, 1 INTERNAL, 2 HIDDEN, 3 PROTECTED */
  visibility: number;
  shndx: number;
}

const SYM_BYTES = 24;
const decoder = new TextDecoder("latin1");

/** The symbols of a SYMTAB or DYNSYM section, names from its linked string table; every offset is checked
 * against the file (a symbol whose name lies outside the table gets the name ""). */
export function readSymbols(data: Uint8Array, elf: ElfFile, section: ElfSection): ElfSymbol[] {
  const strtab = elf.sections[section.link];
  if (!strtab || strtab.type !== SHT.STRTAB) return [];
  const len = BigInt(data.length);
  if (section.offset + section.size > len || strtab.offset + strtab.size > len) return [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = Number(section.size / BigInt(SYM_BYTES));
  const base = Number(section.offset);
  const strBase = Number(strtab.offset);
  const strSize = Number(strtab.size);
  const out: ElfSymbol[] = [];
  for (let i = 0; i < count; i++) {
    const o = base + i * SYM_BYTES;
    const nameOff = view.getUint32(o, true);
    let name = "";
    if (nameOff < strSize) {
      const start = strBase + nameOff;
      const end = data.indexOf(0, start);
      if (end >= 0 && end < strBase + strSize) name = decoder.decode(data.subarray(start, end));
    }
    const info = view.getUint8(o + 4);
    out.push({
      name,
      type: info & 0xf,
      bind: info >> 4,
      visibility: view.getUint8(o + 5) & 3,
      shndx: view.getUint16(o + 6, true),
      value: view.getBigUint64(o + 8, true),
      size: view.getBigUint64(o + 16, true),
    });
  }
  return out;
}

/** Functions a file exports: defined FUNC/IFUNC symbols with global or weak binding and default or protected
 * visibility, from .dynsym (what a shared library or PIE offers), else from .symtab. Version suffixes dropped. */
export function exportedFunctions(data: Uint8Array, elf: ElfFile): Set<string> {
  const dyn = elf.sections.find((s) => s.type === SHT.DYNSYM);
  const sym = elf.sections.find((s) => s.type === SHT.SYMTAB);
  const out = new Set<string>();
  for (const table of [dyn, sym]) {
    if (!table) continue;
    for (const s of readSymbols(data, elf, table)) {
      const defined = s.shndx !== 0;
      const func = s.type === 2 || s.type === 10;
      const global = s.bind === 1 || s.bind === 2 || s.bind === 10;
      const visible = s.visibility === 0 || s.visibility === 3;
      if (defined && func && global && visible && s.name) out.add(s.name.split("@")[0]!);
    }
    if (out.size > 0) break;
  }
  return out;
}

// ------------------------------------------------------------------------------------------ analysis ---
export const FRESH = { base: 0x400000n, header: 0x1000n, page: 0x1000n } as const;

export interface LayoutSection {
  index: number;
  name: string;
  type: string;
  address: bigint;
  offset: bigint;
  size: bigint;
  entsize: bigint;
  flags: string;
  link: number;
  info: number;
  align: bigint;
  /** "r-x" from SHF_ALLOC, SHF_WRITE, SHF_EXECINSTR ("---" when not allocated) */
  permissions: string;
  allocated: boolean;
  /** aligned as its sh_addralign asks (always true for sections not allocated) */
  aligned: boolean;
  /** a zero-fill TLS template (.tbss): no address space of its own */
  tlsTemplate: boolean;
  /** the address the fresh layout gives it (allocated sections only) */
  freshAddress: bigint | null;
}

export interface FileLayout {
  type: string;
  machine: string;
  sections: LayoutSection[];
  segments: { type: string; flags: string; offset: bigint; vaddr: bigint; filesz: bigint; memsz: bigint; align: bigint }[];
  /** the layout's start for utilization: the lowest PT_LOAD address (else the lowest section address) */
  imageBase: bigint;
  /** the file's own layout; null for a relocatable object (its sections have no addresses yet) */
  own: (LayoutReport & { overlaps: [string, string][] }) | null;
  fresh: LayoutReport & { base: bigint };
}

function regionOf(s: ElfSection): Region {
  return {
    base: s.addr,
    size: s.size,
    alignment: s.addralign,
    tag: s.index,
    permissions: layout.permissions(s.flags),
    kind: (s.type === SHT.NOBITS ? REGION_KIND.ZERO_FILL : 0) | (s.flags & SHF.TLS ? REGION_KIND.TLS : 0),
  };
}

/** Parse data as ELF64 LE and analyse its memory layout. Throws AetherError for anything the parser refuses. */
export function analyzeLayout(data: Uint8Array): FileLayout {
  const elf = parseElf(data);
  const machine = elf.header.machine;
  const alloc = elf.sections.filter((s) => s.index > 0 && (s.flags & SHF.ALLOC) !== 0n);
  const regions = alloc.map(regionOf);
  const loads = elf.segments.filter((g) => g.type === PT_LOAD);
  const imageBase =
    loads.length > 0
      ? loads.reduce((m, g) => (g.vaddr < m ? g.vaddr : m), loads[0]!.vaddr)
      : regions.length > 0
        ? regions.reduce((m, r) => (r.base < m ? r.base : m), regions[0]!.base)
        : 0n;
  const relocatable = elf.header.type === 1;
  let own: FileLayout["own"] = null;
  if (!relocatable) {
    const report = layout.validate(regions, imageBase);
    const { pairs } = layout.overlaps(regions, 20);
    own = { ...report, overlaps: pairs.map(([a, b]) => [alloc[a]!.name, alloc[b]!.name]) };
  }
  const placed = layout.compute(regions, FRESH);
  const fresh = { ...layout.validate(placed, FRESH.base), base: FRESH.base };
  const freshByIndex = new Map(placed.map((r) => [r.tag, r.base]));
  const sections: LayoutSection[] = elf.sections.map((s) => {
    const allocated = s.index > 0 && (s.flags & SHF.ALLOC) !== 0n;
    const aligned = !allocated || s.addralign <= 1n || s.addr % s.addralign === 0n;
    return {
      index: s.index,
      name: s.name,
      type: sectionTypeName(s.type, machine),
      address: s.addr,
      offset: s.offset,
      size: s.size,
      entsize: s.entsize,
      flags: sectionFlagLetters(s.flags, machine),
      link: s.link,
      info: s.info,
      align: s.addralign,
      permissions: layout.permissionText(allocated ? layout.permissions(s.flags) : PERM.NONE),
      allocated,
      aligned,
      tlsTemplate: allocated && s.type === SHT.NOBITS && (s.flags & SHF.TLS) !== 0n,
      freshAddress: freshByIndex.get(s.index) ?? null,
    };
  });
  return {
    type: fileTypeName(elf.header.type),
    machine: machineName(machine),
    sections,
    segments: elf.segments.map((g) => ({
      type: segmentTypeName(g.type),
      flags: segmentFlagText(g.flags),
      offset: g.offset,
      vaddr: g.vaddr,
      filesz: g.filesz,
      memsz: g.memsz,
      align: g.align,
    })),
    imageBase,
    own,
    fresh,
  };
}
