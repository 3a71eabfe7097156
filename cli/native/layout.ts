// layout.ts: the ELF64 parser and the region-layout engine of libaether, typed. Addresses, offsets and sizes
// are bigint (a 64-bit field does not fit a double); counts and indices are numbers.
import { check, native } from "./ffi.ts";

export const PERM = { NONE: 0, EXEC: 1, WRITE: 2, READ: 4 } as const;
export const REGION_KIND = { ZERO_FILL: 1, TLS: 2 } as const;

export interface ElfHeader {
  /** e_type: 1 REL, 2 EXEC, 3 DYN, 4 CORE */
  type: number;
  machine: number;
  flags: number;
  entry: bigint;
  phoff: bigint;
  shoff: bigint;
  sectionCount: number;
  segmentCount: number;
  shstrndx: number;
  osabi: number;
  abiversion: number;
}

export interface ElfSection {
  index: number;
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: bigint;
  size: bigint;
  link: number;
  info: number;
  addralign: bigint;
  entsize: bigint;
}

export interface ElfSegment {
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

export interface ElfFile {
  header: ElfHeader;
  sections: ElfSection[];
  segments: ElfSegment[];
}

export interface Region {
  base: bigint;
  size: bigint;
  /** 0n and 1n: no constraint */
  alignment: bigint;
  /** the caller's id (an ELF section index) */
  tag: number;
  /** PERM bits */
  permissions: number;
  /** REGION_KIND bits */
  kind: number;
}

export interface LayoutReport {
  /** regions that take address space (size > 0, not a zero-fill TLS template) */
  regions: number;
  totalSize: bigint;
  minBase: bigint;
  /** max(base + size), saturated at 2^64 - 1 */
  maxEnd: bigint;
  misaligned: number;
  overlappingPairs: number;
  overflowing: number;
  /** indices into the regions given, or -1 */
  firstMisaligned: number;
  firstOverflow: number;
  overlapA: number;
  overlapB: number;
  /** sum size / (max end - base address) */
  utilization: number;
  /** 1 - sum size / (max end - min base) */
  fragmentation: number;
  valid: boolean;
}

// Struct sizes, pinned by _Static_assert in csrc/elf.c and csrc/layout.c.
const HEADER_BYTES = 48;
const SECTION_BYTES = 72;
const SEGMENT_BYTES = 56;
const REGION_BYTES = 32;
const REPORT_BYTES = 112;
const PAIR_BYTES = 8;

const latin1 = new TextDecoder("latin1");

/** A non-empty view of data for the FFI (an empty TypedArray may not yield a pointer). */
function nonEmpty(data: Uint8Array): Uint8Array {
  return data.length > 0 ? data : new Uint8Array(1);
}

/** Parse an ELF64 little-endian file held in memory. Throws AetherError: AETHER_ERR_NOT_ELF (not ELF, 32-bit,
 * big-endian), AETHER_ERR_TRUNCATED, AETHER_ERR_MALFORMED. */
export function parseElf(data: Uint8Array): ElfFile {
  const n = native();
  const buf = nonEmpty(data);
  const hb = new ArrayBuffer(HEADER_BYTES);
  check(n.aether_elf_parse(buf, data.length, new Uint8Array(hb), null, 0, null, 0), "ELF");
  const hv = new DataView(hb);
  const header: ElfHeader = {
    type: hv.getUint16(0, true),
    machine: hv.getUint16(2, true),
    flags: hv.getUint32(4, true),
    entry: hv.getBigUint64(8, true),
    phoff: hv.getBigUint64(16, true),
    shoff: hv.getBigUint64(24, true),
    sectionCount: hv.getUint32(32, true),
    segmentCount: hv.getUint32(36, true),
    shstrndx: hv.getUint32(40, true),
    osabi: hv.getUint8(44),
    abiversion: hv.getUint8(45),
  };
  const sb = new ArrayBuffer(Math.max(1, header.sectionCount) * SECTION_BYTES);
  const gb = new ArrayBuffer(Math.max(1, header.segmentCount) * SEGMENT_BYTES);
  check(
    n.aether_elf_parse(buf, data.length, new Uint8Array(hb), new Uint8Array(sb), header.sectionCount, new Uint8Array(gb), header.segmentCount),
    "ELF",
  );
  const sv = new DataView(sb);
  const sections: ElfSection[] = [];
  for (let i = 0; i < header.sectionCount; i++) {
    const o = i * SECTION_BYTES;
    const nameOff = Number(sv.getBigUint64(o, true));
    const nameLen = sv.getUint32(o + 8, true);
    sections.push({
      index: i,
      name: nameLen ? latin1.decode(data.subarray(nameOff, nameOff + nameLen)) : "",
      type: sv.getUint32(o + 12, true),
      flags: sv.getBigUint64(o + 16, true),
      addr: sv.getBigUint64(o + 24, true),
      offset: sv.getBigUint64(o + 32, true),
      size: sv.getBigUint64(o + 40, true),
      link: sv.getUint32(o + 48, true),
      info: sv.getUint32(o + 52, true),
      addralign: sv.getBigUint64(o + 56, true),
      entsize: sv.getBigUint64(o + 64, true),
    });
  }
  const gv = new DataView(gb);
  const segments: ElfSegment[] = [];
  for (let i = 0; i < header.segmentCount; i++) {
    const o = i * SEGMENT_BYTES;
    segments.push({
      type: gv.getUint32(o, true),
      flags: gv.getUint32(o + 4, true),
      offset: gv.getBigUint64(o + 8, true),
      vaddr: gv.getBigUint64(o + 16, true),
      paddr: gv.getBigUint64(o + 24, true),
      filesz: gv.getBigUint64(o + 32, true),
      memsz: gv.getBigUint64(o + 40, true),
      align: gv.getBigUint64(o + 48, true),
    });
  }
  return { header, sections, segments };
}

function packRegions(regions: readonly Region[]): Uint8Array {
  const b = new ArrayBuffer(Math.max(1, regions.length) * REGION_BYTES);
  const v = new DataView(b);
  regions.forEach((r, i) => {
    const o = i * REGION_BYTES;
    v.setBigUint64(o, r.base, true);
    v.setBigUint64(o + 8, r.size, true);
    v.setBigUint64(o + 16, r.alignment, true);
    v.setUint32(o + 24, r.tag >>> 0, true);
    v.setUint16(o + 28, r.permissions, true);
    v.setUint16(o + 30, r.kind, true);
  });
  return new Uint8Array(b);
}

function unpackRegions(bytes: Uint8Array, n: number): Region[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Region[] = [];
  for (let i = 0; i < n; i++) {
    const o = i * REGION_BYTES;
    out.push({
      base: v.getBigUint64(o, true),
      size: v.getBigUint64(o + 8, true),
      alignment: v.getBigUint64(o + 16, true),
      tag: v.getUint32(o + 24, true),
      permissions: v.getUint16(o + 28, true),
      kind: v.getUint16(o + 30, true),
    });
  }
  return out;
}

const U64_MAX = (1n << 64n) - 1n;
function u64(name: string, v: bigint): bigint {
  if (v < 0n || v > U64_MAX) throw new RangeError(`${name} ${v} is not a 64-bit unsigned value`);
  return v;
}

export const layout = {
  /** align(addr, a): the least multiple of a at or above addr (a = 0: addr). Throws past 2^64 - 1. */
  align(addr: bigint, alignment: bigint): bigint {
    const out = new BigUint64Array(1);
    check(native().aether_layout_align(u64("address", addr), u64("alignment", alignment), out), "align");
    return out[0]!;
  },
  /** PERM bits of ELF section flags. */
  permissions(elfFlags: bigint): number {
    return native().aether_layout_permissions(u64("flags", elfFlags));
  },
  /** "rwx" text of PERM bits, "-" for a missing one. */
  permissionText(p: number): string {
    return `${p & PERM.READ ? "r" : "-"}${p & PERM.WRITE ? "w" : "-"}${p & PERM.EXEC ? "x" : "-"}`;
  },
  /** Intersecting pairs (indices a < b), by the O(n log n) sweep: the count of all, the first maxPairs listed. */
  overlaps(regions: readonly Region[], maxPairs = 100): { count: number; pairs: [number, number][] } {
    const count = new BigUint64Array(1);
    const pb = new Uint32Array(Math.max(1, maxPairs) * (PAIR_BYTES / 4));
    check(native().aether_layout_overlaps(packRegions(regions), regions.length, count, maxPairs > 0 ? pb : null, maxPairs), "overlaps");
    const c = Number(count[0]);
    const pairs: [number, number][] = [];
    for (let i = 0; i < Math.min(c, maxPairs); i++) pairs.push([pb[2 * i]!, pb[2 * i + 1]!]);
    return { count: c, pairs };
  },
  /** The specification's validation, utilization and fragmentation; baseAddress is the layout's start. */
  validate(regions: readonly Region[], baseAddress: bigint): LayoutReport {
    const rb = new ArrayBuffer(REPORT_BYTES);
    check(native().aether_layout_validate(packRegions(regions), regions.length, u64("base address", baseAddress), new Uint8Array(rb)), "validate");
    const v = new DataView(rb);
    const big = (o: number) => v.getBigUint64(o, true);
    const num = (o: number) => Number(v.getBigUint64(o, true));
    const idx = (o: number) => Number(v.getBigInt64(o, true));
    return {
      regions: num(0),
      totalSize: big(8),
      minBase: big(16),
      maxEnd: big(24),
      misaligned: num(32),
      overlappingPairs: num(40),
      overflowing: num(48),
      firstMisaligned: idx(56),
      firstOverflow: idx(64),
      overlapA: idx(72),
      overlapB: idx(80),
      utilization: v.getFloat64(88, true),
      fragmentation: v.getFloat64(96, true),
      valid: v.getUint32(104, true) === 1,
    };
  },
  /** A fresh layout the specification's way: permission groups (exec, read-only, read-write, zero-fill), each
   * page-aligned, sequential inside; the result is in input order with new bases. */
  compute(regions: readonly Region[], opts: { base?: bigint; header?: bigint; page?: bigint } = {}): Region[] {
    const input = packRegions(regions);
    const out = new Uint8Array(input.length);
    check(
      native().aether_layout_compute(input, regions.length, u64("base", opts.base ?? 0x400000n), u64("header", opts.header ?? 0x1000n), u64("page", opts.page ?? 0x1000n), out),
      "layout",
    );
    return unpackRegions(out, regions.length);
  },
};
