// The ELF parser and the region-layout engine through the FFI, as users call them: real files checked field by
// field against readelf, the specification's formulas on hand-made layouts, the O(n log n) overlap sweep
// against the all-pairs definition, corrupted and truncated files refused (in a child process, so a parser
// crash could never take the test runner with it), and `aether layout` as users run it.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { analyzeLayout, hex, segmentTypeName, sectionFlagLetters, sectionTypeName } from "../cli/lib/elf.ts";
import { AetherError, errorCode, loadedLibrary } from "../cli/native/ffi.ts";
import { layout, parseElf, PERM, REGION_KIND, type Region } from "../cli/native/layout.ts";
import { aether, runCmd, runSnippet } from "./helpers/run.ts";

const LIBAETHER = loadedLibrary().path;
const SYSTEM_FILES = [
  "/bin/ls",
  "/usr/bin/bash",
  "/usr/lib/x86_64-linux-gnu/libc.so.6",
  "/usr/lib/x86_64-linux-gnu/libcrypto.so.3",
  "/usr/lib/x86_64-linux-gnu/libm.so.6",
].filter((f) => existsSync(f));

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "aether-layout-test-"));
}


// ------------------------------------------------------------------------------------------ readelf ---
interface ReadelfSection {
  nr: number;
  name: string;
  type: string;
  address: bigint;
  offset: bigint;
  size: bigint;
  es: bigint;
  flags: string;
  link: number;
  info: number;
  align: bigint;
}

function readelfSections(file: string): ReadelfSection[] {
  const r = runCmd(["readelf", "-S", "-W", file]);
  expect(r.code).toBe(0);
  const out: ReadelfSection[] = [];
  const re = /^\s*\[\s*(\d+)\]\s(.*?)\s+(\S+(?: SECTION INDICES)?)\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([A-Za-z]*)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/;
  for (const line of r.stdout.split("\n")) {
    const m = re.exec(line);
    if (!m) continue;
    out.push({
      nr: Number(m[1]),
      name: m[2]!.trim(),
      type: m[3]!,
      address: BigInt(`0x${m[4]}`),
      offset: BigInt(`0x${m[5]}`),
      size: BigInt(`0x${m[6]}`),
      es: BigInt(`0x${m[7]}`),
      flags: m[8]!,
      link: Number(m[9]),
      info: Number(m[10]),
      align: BigInt(m[11]!),
    });
  }
  return out;
}

function readelfSegments(file: string) {
  const r = runCmd(["readelf", "-l", "-W", file]);
  const out: { type: string; offset: bigint; vaddr: bigint; paddr: bigint; filesz: bigint; memsz: bigint; flags: string; align: bigint }[] = [];
  const re = /^\s+([A-Z_]+|0x[0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+([RWE ]{3})\s+0x([0-9a-f]+)\s*$/;
  for (const line of r.stdout.split("\n")) {
    const m = re.exec(line);
    if (!m) continue;
    out.push({
      type: m[1]!,
      offset: BigInt(`0x${m[2]}`),
      vaddr: BigInt(`0x${m[3]}`),
      paddr: BigInt(`0x${m[4]}`),
      filesz: BigInt(`0x${m[5]}`),
      memsz: BigInt(`0x${m[6]}`),
      flags: m[7]!.replace(/ /g, ""),
      align: BigInt(`0x${m[8]}`),
    });
  }
  return out;
}

/** Compile a relocatable object with many sections (one per function, a TLS variable, bss, rodata). */
function objectFile(dir: string): string {
  const src = join(dir, "obj.c");
  writeFileSync(
    src,
    `__thread int tls_counter; __thread int tls_init = 3; static char zeroed[4096]; const char text[] = "hello";
     int twice(int x) { return 2 * x + zeroed[x & 7] + text[0]; } int add(int a, int b) { return a + b + tls_counter + tls_init; }`,
  );
  const obj = join(dir, "obj.o");
  expect(runCmd(["gcc", "-O2", "-ffunction-sections", "-fdata-sections", "-c", src, "-o", obj]).code).toBe(0);
  return obj;
}

describe("ELF64 parsing, field by field against readelf -S -W and -l -W", () => {
  const files = [LIBAETHER, ...SYSTEM_FILES];

  test("the test covers libaether and several system binaries and libraries", () => {
    expect(existsSync(LIBAETHER)).toBe(true);
    expect(SYSTEM_FILES.length).toBeGreaterThanOrEqual(3);
  });

  for (const file of files) {
    test(`sections of ${file}`, () => {
      const elf = parseElf(readFileSync(file));
      const expected = readelfSections(file);
      expect(expected.length).toBeGreaterThan(10);
      expect(elf.sections.length).toBe(expected.length);
      expect(elf.header.sectionCount).toBe(expected.length);
      for (const e of expected) {
        const s = elf.sections[e.nr]!;
        const got = {
          nr: s.index,
          name: s.name,
          type: sectionTypeName(s.type, elf.header.machine),
          address: s.addr,
          offset: s.offset,
          size: s.size,
          es: s.entsize,
          flags: sectionFlagLetters(s.flags, elf.header.machine),
          link: s.link,
          info: s.info,
          align: s.addralign,
        };
        expect(got).toEqual(e);
      }
    });

    test(`program headers of ${file}`, () => {
      const elf = parseElf(readFileSync(file));
      const expected = readelfSegments(file);
      expect(expected.length).toBeGreaterThan(3);
      expect(elf.segments.length).toBe(expected.length);
      elf.segments.forEach((g, i) => {
        const e = expected[i]!;
        expect({
          type: segmentTypeName(g.type),
          offset: g.offset,
          vaddr: g.vaddr,
          paddr: g.paddr,
          filesz: g.filesz,
          memsz: g.memsz,
          flags: `${g.flags & 4 ? "R" : ""}${g.flags & 2 ? "W" : ""}${g.flags & 1 ? "E" : ""}`,
          align: g.align,
        }).toEqual(e);
      });
    });
  }

  test("a relocatable object: sections (rela, TLS, per-function) match readelf; no program headers", () => {
    const dir = tmp();
    try {
      const obj = objectFile(dir);
      const elf = parseElf(readFileSync(obj));
      expect(elf.header.type).toBe(1);
      expect(elf.segments).toEqual([]);
      const expected = readelfSections(obj);
      expect(elf.sections.map((s) => [s.name, sectionTypeName(s.type), sectionFlagLetters(s.flags), s.size, s.link, s.info])).toEqual(
        expected.map((e) => [e.name, e.type, e.flags, e.size, e.link, e.info]),
      );
      expect(elf.sections.some((s) => s.name.startsWith(".tbss") && sectionFlagLetters(s.flags) === "WAT")).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------------------ the layout engine ---
const R = (base: bigint | number, size: bigint | number, alignment: bigint | number = 0, extra: Partial<Region> = {}): Region => ({
  base: BigInt(base),
  size: BigInt(size),
  alignment: BigInt(alignment),
  tag: 0,
  permissions: PERM.READ,
  kind: 0,
  ...extra,
});
const TOP = 1n << 64n;

describe("alignment: the bit path for powers of two, the remainder path otherwise", () => {
  test("the specification's cases", () => {
    expect(layout.align(0x1001n, 0x1000n)).toBe(0x2000n);
    expect(layout.align(0x1000n, 0x1000n)).toBe(0x1000n);
    expect(layout.align(0x400000n + 0x1234n, 16n)).toBe(0x401240n);
    expect(layout.align(12345n, 0n)).toBe(12345n);
    expect(layout.align(12345n, 1n)).toBe(12345n);
    expect(layout.align(0n, 4096n)).toBe(0n);
  });

  test("non-powers of two: addr + (a - addr mod a)", () => {
    expect(layout.align(10n, 3n)).toBe(12n);
    expect(layout.align(12n, 3n)).toBe(12n);
    expect(layout.align(1001n, 1000n)).toBe(2000n);
    for (let i = 0; i < 300; i++) {
      const a = BigInt(1 + ((i * 7919) % 997));
      const addr = BigInt(i * 104729);
      const got = layout.align(addr, a);
      expect(got % a).toBe(0n);
      expect(got >= addr && got - addr < a).toBe(true);
    }
  });

  test("the top of the address space: exact, and an overflow is an error, not a wrap", () => {
    expect(layout.align(TOP - 4096n, 4096n)).toBe(TOP - 4096n);
    expect(layout.align(TOP - 1n, 1n)).toBe(TOP - 1n);
    expect(errorCode(() => layout.align(TOP - 4095n, 4096n))).toBe("AETHER_ERR_SIZE_OVERFLOW");
    expect(errorCode(() => layout.align(TOP - 1n, 7n))).toBe("AETHER_ERR_SIZE_OVERFLOW"); // 2^64 - 1 = 1 mod 7
    expect(layout.align(TOP - 3n, 3n)).toBe(TOP - 1n); // 2^64 - 1 is a multiple of 3
  });
});

describe("permissions from SHF_ALLOC, SHF_WRITE, SHF_EXECINSTR", () => {
  test("the usual sections and the corner cases", () => {
    const A = 2n, W = 1n, X = 4n;
    expect(layout.permissions(A | X)).toBe(PERM.READ | PERM.EXEC); // .text
    expect(layout.permissions(A | W)).toBe(PERM.READ | PERM.WRITE); // .data
    expect(layout.permissions(A)).toBe(PERM.READ); // .rodata
    expect(layout.permissions(0n)).toBe(PERM.NONE); // .symtab
    expect(layout.permissions(W)).toBe(PERM.READ | PERM.WRITE);
    expect(layout.permissions(X)).toBe(PERM.READ | PERM.EXEC);
    expect(layout.permissions(A | W | X)).toBe(PERM.READ | PERM.WRITE | PERM.EXEC);
    expect(layout.permissions(A | W | 0x400n | 0x10n)).toBe(PERM.READ | PERM.WRITE); // other bits ignored
    expect(layout.permissionText(5)).toBe("r-x");
  });
});

/** The definition: every pair with a non-empty intersection (empty regions and .tbss take no space). */
function bruteForce(regions: Region[]): [number, number][] {
  const space = (r: Region) => r.size > 0n && (r.kind & 3) !== 3;
  const out: [number, number][] = [];
  for (let i = 0; i < regions.length; i++)
    for (let j = i + 1; j < regions.length; j++) {
      const a = regions[i]!, b = regions[j]!;
      if (space(a) && space(b) && !(a.base + a.size <= b.base || b.base + b.size <= a.base)) out.push([i, j]);
    }
  return out;
}

describe("overlap detection: the sweep agrees with the all-pairs definition", () => {
  test("hand-made cases: adjacent, nested, identical, empty, .tbss, the top of the address space", () => {
    expect(layout.overlaps([R(0, 16), R(16, 16)]).count).toBe(0); // adjacent: [0,16) and [16,32)
    expect(layout.overlaps([R(0, 17), R(16, 16)]).pairs).toEqual([[0, 1]]);
    expect(layout.overlaps([R(0, 100), R(10, 5), R(20, 5)]).pairs).toEqual([[0, 1], [0, 2]]);
    expect(layout.overlaps([R(8, 8), R(8, 8)]).count).toBe(1);
    expect(layout.overlaps([R(0, 100), R(50, 0)]).count).toBe(0);
    const tbss = R(0x1000, 0x80, 8, { kind: REGION_KIND.TLS | REGION_KIND.ZERO_FILL });
    const tdata = R(0x1000, 0x80, 8, { kind: REGION_KIND.TLS });
    expect(layout.overlaps([tbss, R(0x1000, 0x10)]).count).toBe(0);
    expect(layout.overlaps([tdata, R(0x1000, 0x10)]).count).toBe(1);
    expect(layout.overlaps([R(TOP - 16n, 16), R(TOP - 8n, 8)]).count).toBe(1);
    expect(layout.overlaps([]).count).toBe(0);
  });

  test("2000 random region sets of up to 60 regions", () => {
    let seed = 0x2545f491;
    const rand = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    for (let t = 0; t < 2000; t++) {
      const n = rand(60);
      const regions: Region[] = [];
      for (let i = 0; i < n; i++) {
        const kind = rand(10) === 0 ? REGION_KIND.TLS | REGION_KIND.ZERO_FILL : rand(10) === 0 ? REGION_KIND.ZERO_FILL : 0;
        const base = rand(20) === 0 ? TOP - BigInt(1 + rand(64)) : BigInt(rand(4096));
        const size = rand(8) === 0 ? 0n : BigInt(rand(300));
        regions.push(R(base, base + size > TOP ? TOP - base : size, 0, { kind }));
      }
      const expected = bruteForce(regions);
      const got = layout.overlaps(regions, 5000);
      expect(got.count).toBe(expected.length);
      expect([...got.pairs].sort((a, b) => a[0] - b[0] || a[1] - b[1])).toEqual(expected);
      const limited = layout.overlaps(regions, 3);
      expect(limited.count).toBe(expected.length);
      expect(limited.pairs.length).toBe(Math.min(3, expected.length));
    }
  });
});

describe("validation, utilization and fragmentation by the specification's formulas", () => {
  test("a valid layout: eta = sum size / (max end - base), delta = 1 - sum size / (max end - min base)", () => {
    const regions = [R(0x1000, 0x100, 16), R(0x2000, 0x200, 0x1000)];
    const r = layout.validate(regions, 0x1000n);
    expect(r.valid).toBe(true);
    expect(r.regions).toBe(2);
    expect(r.totalSize).toBe(0x300n);
    expect(r.minBase).toBe(0x1000n);
    expect(r.maxEnd).toBe(0x2200n);
    expect(r.utilization).toBeCloseTo(0x300 / (0x2200 - 0x1000), 12);
    expect(r.fragmentation).toBeCloseTo(1 - 0x300 / (0x2200 - 0x1000), 12);
    const fromZero = layout.validate(regions, 0n);
    expect(fromZero.utilization).toBeCloseTo(0x300 / 0x2200, 12);
    expect(fromZero.fragmentation).toBeCloseTo(r.fragmentation, 12);
  });

  test("each violation is found and located: misaligned, overlapping, past 2^64", () => {
    const mis = layout.validate([R(0x1000, 8, 8), R(0x1004, 8, 8)], 0n);
    expect(mis.valid).toBe(false);
    expect([mis.misaligned, mis.firstMisaligned, mis.overlappingPairs]).toEqual([1, 1, 1]);
    const odd = layout.validate([R(12, 4, 3), R(13, 1, 3)], 0n); // non-power-of-two alignment: 12 ok, 13 not
    expect([odd.misaligned, odd.firstMisaligned]).toEqual([1, 1]);
    const over = layout.validate([R(0, 16), R(32, 16), R(40, 4)], 0n);
    expect([over.valid, over.overlappingPairs, over.overlapA, over.overlapB]).toEqual([false, 1, 1, 2]);
    const past = layout.validate([R(TOP - 8n, 16)], 0n);
    expect([past.valid, past.overflowing, past.firstOverflow]).toEqual([false, 1, 0]);
    expect(past.maxEnd).toBe(TOP - 1n); // saturated
    const top = layout.validate([R(TOP - 16n, 16, 16)], 0n);
    expect([top.valid, top.overflowing]).toEqual([true, 0]); // ending exactly at 2^64 is within bounds
  });

  test("no regions: valid, zero measures", () => {
    const r = layout.validate([], 0x400000n);
    expect([r.valid, r.regions, r.utilization, r.fragmentation]).toEqual([true, 0, 0, 0]);
  });
});

describe("a fresh layout, the specification's way", () => {
  const text = R(0, 0x1234, 16, { permissions: PERM.READ | PERM.EXEC, tag: 1 });
  const data = R(0, 0x80, 8, { permissions: PERM.READ | PERM.WRITE, tag: 2 });
  const rodata = R(0, 0x100, 32, { tag: 3 });
  const bss = R(0, 0x40, 32, { permissions: PERM.READ | PERM.WRITE, kind: REGION_KIND.ZERO_FILL, tag: 4 });

  test("alpha_text = base + 0x1000, each later group page-aligned after the previous", () => {
    const out = layout.compute([data, bss, rodata, text]);
    const at = Object.fromEntries(out.map((r) => [r.tag, r.base]));
    expect(at[1]).toBe(0x401000n); // text
    expect(at[3]).toBe(0x403000n); // rodata: align(0x402234, 0x1000)
    expect(at[2]).toBe(0x404000n); // data: align(0x403100, 0x1000)
    expect(at[4]).toBe(0x405000n); // bss: align(0x404080, 0x1000)
    expect(out.map((r) => r.tag)).toEqual([2, 4, 3, 1]); // input order kept
    expect(layout.validate(out, 0x400000n).valid).toBe(true);
  });

  test("inside a group: addr_{i+1} = align(addr_i + max(size_i, alignment_i), alignment_{i+1})", () => {
    const a = R(0, 1, 64, { permissions: PERM.READ | PERM.EXEC });
    const b = R(0, 0x30, 8, { permissions: PERM.READ | PERM.EXEC });
    const c = R(0, 8, 0x100, { permissions: PERM.READ | PERM.EXEC });
    const out = layout.compute([a, b, c]);
    expect(out.map((r) => r.base)).toEqual([0x401000n, 0x401040n, 0x401100n]);
  });

  test("other bases and pages; a .tbss gets an address but no space", () => {
    const tbss = R(0, 0x100, 8, { permissions: PERM.READ | PERM.WRITE, kind: REGION_KIND.ZERO_FILL | REGION_KIND.TLS, tag: 9 });
    const out = layout.compute([tbss, bss], { base: 0x10000n, header: 0n, page: 0x10000n });
    expect(out.map((r) => r.base)).toEqual([0x10000n, 0x10000n]);
  });

  test("errors: a region without permissions, a page that is not a power of two, past 2^64", () => {
    expect(errorCode(() => layout.compute([R(0, 8, 8, { permissions: PERM.NONE })]))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    expect(errorCode(() => layout.compute([text], { page: 0x1800n }))).toBe("AETHER_ERR_NOT_POWER_OF_TWO");
    expect(errorCode(() => layout.compute([text, data], { base: TOP - 0x3000n }))).toBe("AETHER_ERR_SIZE_OVERFLOW");
  });
});

describe("analysis of real files", () => {
  for (const file of [LIBAETHER, ...SYSTEM_FILES]) {
    test(`${file}: its own layout validates and the fresh layout is valid`, () => {
      const l = analyzeLayout(readFileSync(file));
      expect(l.own).not.toBeNull();
      expect(l.own!.valid).toBe(true);
      expect(l.own!.utilization).toBeGreaterThan(0.5);
      expect(l.own!.utilization).toBeLessThanOrEqual(1);
      expect(l.fresh.valid).toBe(true);
      const alloc = l.sections.filter((s) => s.allocated);
      expect(alloc.every((s) => s.aligned)).toBe(true);
      expect(alloc.every((s) => s.freshAddress !== null && s.freshAddress >= 0x401000n)).toBe(true);
      const exec = alloc.filter((s) => s.permissions === "r-x").map((s) => s.freshAddress!);
      const ro = alloc.filter((s) => s.permissions === "r--").map((s) => s.freshAddress!);
      const rw = alloc.filter((s) => s.permissions === "rw-" && !s.tlsTemplate).map((s) => s.freshAddress!);
      const max = (v: bigint[]) => v.reduce((m, x) => (x > m ? x : m), 0n);
      const min = (v: bigint[]) => v.reduce((m, x) => (x < m ? x : m), TOP);
      expect(max(exec) < min(ro) && max(ro) < min(rw)).toBe(true); // exec -> read-only -> read-write
      expect(min(ro) % 0x1000n).toBe(0n);
      expect(min(rw) % 0x1000n).toBe(0n);
      // Utilization by hand from the sections: sum of sizes over (max end - image base).
      const space = alloc.filter((s) => !s.tlsTemplate && s.size > 0n);
      const sum = space.reduce((n, s) => n + s.size, 0n);
      const end = space.reduce((m, s) => (s.address + s.size > m ? s.address + s.size : m), 0n);
      expect(l.own!.utilization).toBeCloseTo(Number(sum) / Number(end - l.imageBase), 9);
    });
  }

  test("libc's .tbss lies over .init_array by design and is not an overlap", () => {
    const libc = SYSTEM_FILES.find((f) => f.endsWith("libc.so.6"));
    expect(libc).toBeDefined();
    const l = analyzeLayout(readFileSync(libc!));
    const tbss = l.sections.find((s) => s.name === ".tbss")!;
    expect(tbss.tlsTemplate).toBe(true);
    expect(l.sections.some((s) => s.allocated && s !== tbss && s.address === tbss.address)).toBe(true);
    expect(l.own!.overlappingPairs).toBe(0);
  });
});

// ------------------------------------------------------------------------------ refused, not crashed ---
/** Offsets in an ELF64 header and tables. */
const E = { shoff: 40, phoff: 32, ehsize: 52, phentsize: 54, phnum: 56, shentsize: 58, shnum: 60, shstrndx: 62 };

function corrupt(base: Uint8Array, edit: (v: DataView, b: Uint8Array) => void): Uint8Array {
  const b = Uint8Array.from(base);
  edit(new DataView(b.buffer), b);
  return b;
}

describe("corrupted ELF files are refused with the reason", () => {
  const lib = new Uint8Array(readFileSync(LIBAETHER));
  const hv = new DataView(lib.buffer, lib.byteOffset, lib.byteLength);
  const shoff = Number(hv.getBigUint64(E.shoff, true));
  const phoff = Number(hv.getBigUint64(E.phoff, true));
  const shnum = hv.getUint16(E.shnum, true);
  const shstrndx = hv.getUint16(E.shstrndx, true);
  const sh = (i: number) => shoff + 64 * i;
  const textIndex = parseElf(lib).sections.findIndex((s) => s.name === ".text");

  const cases: [string, (v: DataView, b: Uint8Array) => void, string, RegExp][] = [
    ["bad magic", (_v, b) => (b[1] = 0x46), "AETHER_ERR_NOT_ELF", /magic/],
    ["32-bit class", (_v, b) => (b[4] = 1), "AETHER_ERR_NOT_ELF", /32-bit/],
    ["unknown class", (_v, b) => (b[4] = 7), "AETHER_ERR_NOT_ELF", /class 7/],
    ["big-endian", (_v, b) => (b[5] = 2), "AETHER_ERR_NOT_ELF", /big-endian/],
    ["identification version", (_v, b) => (b[6] = 0), "AETHER_ERR_MALFORMED", /version/],
    ["e_version", (v) => v.setUint32(20, 2, true), "AETHER_ERR_MALFORMED", /e_version/],
    ["e_ehsize too small", (v) => v.setUint16(E.ehsize, 40, true), "AETHER_ERR_MALFORMED", /e_ehsize/],
    ["section table past the end", (v, b) => v.setBigUint64(E.shoff, BigInt(b.length - 100), true), "AETHER_ERR_TRUNCATED", /section header table/],
    ["section table offset wraps 2^64", (v) => v.setBigUint64(E.shoff, 0xfffffffffffffff0n, true), "AETHER_ERR_TRUNCATED", /section header 0/],
    ["e_shentsize too small", (v) => v.setUint16(E.shentsize, 40, true), "AETHER_ERR_MALFORMED", /e_shentsize/],
    ["e_shnum too large", (v) => v.setUint16(E.shnum, 0xfeff, true), "AETHER_ERR_TRUNCATED", /section header table/],
    ["e_shstrndx out of range", (v) => v.setUint16(E.shstrndx, shnum + 3, true), "AETHER_ERR_MALFORMED", /section-name table index/],
    ["name table of the wrong type", (v) => v.setUint32(sh(shstrndx) + 4, 1, true), "AETHER_ERR_MALFORMED", /SHT_STRTAB/],
    ["name table past the end", (v) => v.setBigUint64(sh(shstrndx) + 24, 0xffffffff00n, true), "AETHER_ERR_TRUNCATED", /section-name table/],
    ["a name outside its table", (v) => v.setUint32(sh(textIndex), 0x7fffffff, true), "AETHER_ERR_MALFORMED", /name offset/],
    ["an unterminated name", (v, b) => {
      const size = Number(v.getBigUint64(sh(shstrndx) + 32, true));
      const off = Number(v.getBigUint64(sh(shstrndx) + 24, true));
      b[off + size - 1] = 0x41; // the last name loses its NUL
    }, "AETHER_ERR_MALFORMED", /NUL-terminated/],
    ["section contents past the end", (v) => v.setBigUint64(sh(textIndex) + 32, 0x10000000n, true), "AETHER_ERR_TRUNCATED", /contents/],
    ["section offset wraps 2^64", (v) => v.setBigUint64(sh(textIndex) + 24, 0xffffffffffffff00n, true), "AETHER_ERR_TRUNCATED", /contents/],
    ["program headers past the end", (v, b) => v.setBigUint64(E.phoff, BigInt(b.length - 10), true), "AETHER_ERR_TRUNCATED", /program header table/],
    ["e_phentsize too small", (v) => v.setUint16(E.phentsize, 32, true), "AETHER_ERR_MALFORMED", /e_phentsize/],
    ["PT_LOAD with memsz < filesz", (v) => {
      for (let i = 0; ; i++) {
        if (v.getUint32(phoff + 56 * i, true) === 1) {
          v.setBigUint64(phoff + 56 * i + 40, 0n, true);
          v.setBigUint64(phoff + 56 * i + 32, 16n, true);
          return;
        }
      }
    }, "AETHER_ERR_MALFORMED", /p_memsz/],
    ["segment contents past the end", (v) => v.setBigUint64(phoff + 32, 0x10000000n, true), "AETHER_ERR_TRUNCATED", /program header 0/],
  ];

  for (const [what, edit, expected, message] of cases) {
    test(what, () => {
      let err: AetherError | undefined;
      try {
        parseElf(corrupt(lib, edit));
      } catch (e) {
        err = e as AetherError;
      }
      expect(err).toBeInstanceOf(AetherError);
      expect(err!.code).toBe(expected);
      expect(err!.message).toMatch(message);
    });
  }

  test("tiny inputs: empty, 3 bytes, a bare identification, a header without tables", () => {
    expect(errorCode(() => parseElf(new Uint8Array(0)))).toBe("AETHER_ERR_NOT_ELF");
    expect(errorCode(() => parseElf(lib.subarray(0, 3)))).toBe("AETHER_ERR_NOT_ELF");
    expect(errorCode(() => parseElf(lib.subarray(0, 16)))).toBe("AETHER_ERR_TRUNCATED");
    expect(errorCode(() => parseElf(lib.subarray(0, 63)))).toBe("AETHER_ERR_TRUNCATED");
    const bare = corrupt(lib.subarray(0, 64), (v) => {
      v.setBigUint64(E.shoff, 0n, true);
      v.setUint16(E.shnum, 0, true);
      v.setUint16(E.phnum, 0, true);
    });
    const elf = parseElf(bare);
    expect([elf.sections.length, elf.segments.length]).toEqual([0, 0]);
  });

  test("every truncation and 20000 random byte mutations: each refused or parsed, never a crash (child process)", () => {
    const r = runSnippet(`
      import { readFileSync } from "node:fs";
      import { parseElf } from "../../cli/native/layout.ts";
      import { AetherError } from "../../cli/native/ffi.ts";
      const lib = new Uint8Array(readFileSync(${JSON.stringify(LIBAETHER)}));
      const tally = {};
      const unexpected = [];
      const tryParse = (data, what) => {
        try { parseElf(data); tally.ok = (tally.ok ?? 0) + 1; return "ok"; }
        catch (e) {
          if (!(e instanceof AetherError)) { unexpected.push(what + ": " + e); return "?"; }
          tally[e.code] = (tally[e.code] ?? 0) + 1; return e.code;
        }
      };
      // Truncations: every length near the start and around each table, and every 997 bytes in between.
      const { header } = parseElf(lib);
      const cuts = new Set();
      for (let n = 0; n < 200; n++) cuts.add(n);
      for (let n = 200; n < lib.length; n += 997) cuts.add(n);
      for (const at of [Number(header.shoff), Number(header.phoff)]) for (let d = -70; d <= 70; d++) if (at + d >= 0 && at + d < lib.length) cuts.add(at + d);
      for (let n = lib.length - 200; n < lib.length; n++) cuts.add(n);
      const truncated = {};
      for (const n of cuts) { const c = tryParse(lib.subarray(0, n), "cut " + n); truncated[c] = (truncated[c] ?? 0) + 1; }
      // Mutations: 1-4 random bytes of the header, the section table or the program headers.
      let seed = 12345;
      const rand = (n) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
      const regions = [[0, 64], [Number(header.phoff), header.segmentCount * 56], [Number(header.shoff), header.sectionCount * 64]];
      for (let i = 0; i < 20000; i++) {
        const saved = [];
        const k = 1 + rand(4);
        for (let j = 0; j < k; j++) {
          const [start, len] = regions[rand(3)];
          const at = start + rand(len);
          saved.push([at, lib[at]]);
          lib[at] = rand(8) === 0 ? 0xff : rand(256);
        }
        tryParse(lib, "mutation " + i);
        for (const [at, v] of saved.reverse()) lib[at] = v;
      }
      console.log(JSON.stringify({ tally, truncated, unexpected, cuts: cuts.size }));
    `);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(out.unexpected).toEqual([]);
    // A cut file is never accepted: the section header table sits at the end of a linked file.
    expect(Object.keys(out.truncated).sort()).toEqual(["AETHER_ERR_NOT_ELF", "AETHER_ERR_TRUNCATED"]);
    expect(out.truncated.AETHER_ERR_NOT_ELF).toBe(4); // lengths 0..3: no room for the magic
    for (const k of Object.keys(out.tally)) expect(["ok", "AETHER_ERR_NOT_ELF", "AETHER_ERR_TRUNCATED", "AETHER_ERR_MALFORMED"]).toContain(k);
    expect(out.tally.AETHER_ERR_MALFORMED).toBeGreaterThan(100);
    expect(out.tally.ok).toBeGreaterThan(100);
  });
});

// ------------------------------------------------------------------------------------- the command ---
describe("aether layout", () => {
  test("prints sections with address, size, alignment, permissions, validation and the fresh layout", () => {
    const r = aether(["layout", "/bin/ls"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\/bin\/ls: ELF64 little-endian DYN x86-64, \d+ sections/m);
    expect(r.stdout).toMatch(/\[\d+\]\s+\.text\s+PROGBITS\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+00\s+AX\s+0\s+0\s+16\s+r-x\s+0x00401/);
    expect(r.stdout).toMatch(/\.bss\s+NOBITS .* WA .* rw-/);
    expect(r.stdout).toMatch(/own layout: valid: \d+ regions, every one aligned, no two overlapping, none past 2\^64/);
    expect(r.stdout).toMatch(/utilization 0\.\d{4}, fragmentation 0\.\d{4}/);
    expect(r.stdout).toMatch(/fresh layout \(base 0x400000, first at 0x401000, exec -> read-only -> read-write -> zero-fill, page-aligned groups\): valid/);
    expect(r.stdout).toMatch(/program headers:\n\s+Type/);
  });

  test("--json for several files: every section as readelf sees it", () => {
    const files = [LIBAETHER, ...SYSTEM_FILES.slice(0, 2)];
    const r = aether(["layout", "--json", ...files]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.valid).toBe(true);
    expect(j.files.map((f: { path: string }) => f.path)).toEqual(files);
    for (const f of j.files) {
      const expected = readelfSections(f.path);
      expect(f.sections.map((s: { name: string; address: string; size: number; align: number; flags: string }) => [s.name, BigInt(s.address), s.size, s.align, s.flags])).toEqual(
        expected.map((e) => [e.name, e.address, Number(e.size), Number(e.align), e.flags]),
      );
      expect(f.own.valid).toBe(true);
      expect(f.own.utilization).toBeGreaterThan(0);
      expect(f.fresh.valid).toBe(true);
      expect(f.fresh.base).toBe("0x400000");
      const text = f.sections.find((s: { name: string }) => s.name === ".text");
      expect(text.permissions).toBe("r-x");
      expect(text.freshAddress).toMatch(/^0x40[0-9a-f]{4}$/);
    }
  });

  test("a file that is not ELF64 little-endian is refused: one line, exit 1", () => {
    const dir = tmp();
    try {
      const lib = readFileSync(LIBAETHER);
      const text = join(dir, "notes.txt");
      writeFileSync(text, "hello\n");
      const b32 = join(dir, "elf32.so");
      writeFileSync(b32, corrupt(lib, (_v, b) => (b[4] = 1)));
      const be = join(dir, "big.so");
      writeFileSync(be, corrupt(lib, (_v, b) => (b[5] = 2)));
      const cut = join(dir, "cut.so");
      writeFileSync(cut, lib.subarray(0, lib.length - 1000));
      for (const [file, expected] of [
        [text, /^aether layout: AETHER_ERR_NOT_ELF: .*notes\.txt: not an ELF file/],
        [b32, /^aether layout: AETHER_ERR_NOT_ELF: .*elf32\.so: 32-bit ELF \(ELFCLASS32\) is not supported: only ELF64$/],
        [be, /^aether layout: AETHER_ERR_NOT_ELF: .*big\.so: big-endian ELF \(ELFDATA2MSB\) is not supported/],
        [cut, /^aether layout: AETHER_ERR_TRUNCATED: .*cut\.so: the section header table .* extends past the end/],
      ] as const) {
        const r = aether(["layout", file]);
        expect(r.code).toBe(1);
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
        expect(r.stderr.trim()).toMatch(expected);
      }
      // A good file next to a bad one: the good one is still printed, the exit code is 1.
      const mixed = aether(["layout", "/bin/ls", text]);
      expect(mixed.code).toBe(1);
      expect(mixed.stdout).toContain("/bin/ls: ELF64");
      const json = JSON.parse(aether(["layout", "--json", text]).stdout);
      expect(json.files[0]).toMatchObject({ ok: false, error: { code: "AETHER_ERR_NOT_ELF" } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a layout that breaks the rules fails validation: overlapping and misaligned sections, exit 1", () => {
    const dir = tmp();
    try {
      const lib = new Uint8Array(readFileSync(LIBAETHER));
      const elf = parseElf(lib);
      const shoff = Number(elf.header.shoff);
      const text = elf.sections.find((s) => s.name === ".text")!;
      const rodata = elf.sections.find((s) => s.name === ".rodata")!;
      const overlapping = join(dir, "overlap.so");
      writeFileSync(overlapping, corrupt(lib, (v) => v.setBigUint64(shoff + 64 * rodata.index + 16, text.addr + 64n, true)));
      const r = aether(["layout", overlapping]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/own layout: INVALID: .*1 overlapping pair\(s\): \.text \/ \.rodata/);
      const misaligned = join(dir, "misaligned.so");
      writeFileSync(misaligned, corrupt(lib, (v) => v.setBigUint64(shoff + 64 * text.index + 16, text.addr + 1n, true)));
      const m = aether(["layout", "--json", misaligned]);
      expect(m.code).toBe(1);
      const j = JSON.parse(m.stdout);
      expect(j.valid).toBe(false);
      expect(j.files[0].own.misaligned).toBe(1);
      expect(j.files[0].sections.find((s: { name: string }) => s.name === ".text").aligned).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a relocatable object has no own layout yet, only the fresh one: exit 0", () => {
    const dir = tmp();
    try {
      const r = aether(["layout", objectFile(dir)]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/ELF64 little-endian REL x86-64/);
      expect(r.stdout).toMatch(/own layout: none/);
      expect(r.stdout).toMatch(/fresh layout .*: valid/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("usage mistakes exit 2: no file, a missing file", () => {
    expect(aether(["layout"]).code).toBe(2);
    const missing = aether(["layout", "/nonexistent/file.so"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no such file: \/nonexistent\/file\.so/);
  });

  test("hex() pads and prints bigints", () => {
    expect(hex(0x401000n, 8)).toBe("0x00401000");
  });
});
