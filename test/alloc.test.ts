// The safe allocator through the FFI, as users call it. Anything that prints diagnostics or may crash runs in a
// child process, and its stderr is checked word for word against the specification's messages.
import { describe, expect, test } from "bun:test";
import { memory } from "../cli/native/memory.ts";
import { addr } from "./helpers/ptr.ts";
import { diagnostics, runSnippet } from "./helpers/run.ts";

const HEX = "0x[0-9a-f]+";
const PRELUDE = `
import { memory } from "aether-memory";
const at = (p, d) => p + d;
const hex = (p) => "0x" + p.toString(16);
memory.init();
`;

/** Run code in a child, return its diagnostics lines and stdout. */
function child(code: string, env: Record<string, string> = {}) {
  const r = runSnippet(PRELUDE + code, { env });
  return { ...r, diag: diagnostics(r.stderr) };
}

describe("diagnostics, word for word", () => {
  test("double free is reported once and ignored", () => {
    const r = child(`
      const p = memory.safeMalloc(40);
      memory.safeFree(p);
      memory.safeFree(p);
      console.log(hex(p));
    `);
    expect(r.code).toBe(0);
    expect(r.diag).toEqual([`AETHER MEMORY ERROR: Double free detected at ${r.stdout.trim()}`]);
  });

  test("double free after the block left the quarantine is still a double free", () => {
    const r = child(`
      memory.setOption("quarantine_bytes", 0);
      const p = memory.safeMalloc(40);
      memory.safeFree(p);
      memory.safeFree(p);
      console.log(hex(p));
    `);
    expect(r.diag).toEqual([`AETHER MEMORY ERROR: Double free detected at ${r.stdout.trim()}`]);
  });

  test("invalid free of an interior pointer reads the would-be header: bad magic", () => {
    const r = child(`
      const p = memory.safeMalloc(64);
      memory.safeFree(at(p, 16));
      console.log(hex(at(p, 16)));
      memory.safeFree(p);
    `);
    expect(r.diag).toHaveLength(1);
    expect(r.diag[0]).toMatch(new RegExp(`^AETHER MEMORY ERROR: Invalid free of ${r.stdout.trim()} \\(bad magic: 0x[0-9a-f]{8}\\)$`));
  });

  test("invalid free of memory the allocator never saw: not a live allocation, nothing read", () => {
    const r = child(`
      const { ptr } = await import("bun:ffi");
      const stackish = new Uint8Array(64);
      const foreign = ptr(stackish);
      memory.safeFree(foreign);
      memory.safeFree(0x10);              // a wild pointer into unmapped memory: must not crash
      memory.safeFree(0x7ffffffff000);    // top of the user address space
      console.log(hex(foreign));
    `);
    expect(r.code).toBe(0);
    expect(r.diag).toEqual([
      `AETHER MEMORY ERROR: Invalid free of ${r.stdout.trim()} (not a live allocation)`,
      "AETHER MEMORY ERROR: Invalid free of 0x10 (not a live allocation)",
      "AETHER MEMORY ERROR: Invalid free of 0x7ffffffff000 (not a live allocation)",
    ]);
  });

  test("overflow by one byte and by many bytes, on free", () => {
    const r = child(`
      const a = memory.safeMalloc(24);
      memory.view(a, 25)[24] = 1;
      memory.safeFree(a);
      const b = memory.safeMalloc(100);
      memory.view(b, 108).fill(7, 100);
      memory.safeFree(b);
      console.log(hex(a), hex(b));
    `);
    const [a, b] = r.stdout.trim().split(" ");
    expect(r.diag).toEqual([
      `AETHER MEMORY ERROR: Buffer overflow detected at ${a}`,
      `AETHER MEMORY ERROR: Buffer overflow detected at ${b}`,
    ]);
  });

  test("every byte of the guard is checked, whatever the size", () => {
    const sizes = [1, 7, 8, 9, 15, 16, 17, 255, 256, 4095, 70000];
    const r = child(`
      const out = [];
      for (const n of ${JSON.stringify(sizes)}) for (let k = 0; k < 8; k++) {
        const p = memory.safeMalloc(n);
        const v = memory.view(p, n + 8);
        v[n + k] ^= 0xff;
        memory.safeFree(p);
        out.push(hex(p));
      }
      console.log(out.join(" "));
    `);
    const expected = r.stdout.trim().split(" ").map((a) => `AETHER MEMORY ERROR: Buffer overflow detected at ${a}`);
    expect(expected).toHaveLength(sizes.length * 8);
    expect(r.diag).toEqual(expected);
  });

  test("underflow by one byte and a damaged header", () => {
    const r = child(`
      const a = memory.safeMalloc(32);
      memory.view(at(a, -1), 1)[0] = 0;
      memory.safeFree(a);
      const b = memory.safeMalloc(32);
      memory.view(at(b, -24), 8).fill(0);      // the header's size field, past the front guard
      memory.safeFree(b);
      console.log(hex(a), hex(b));
    `);
    const [a, b] = r.stdout.trim().split(" ");
    expect(r.diag).toEqual([
      `AETHER MEMORY ERROR: Buffer underflow detected at ${a}`,
      `AETHER MEMORY ERROR: Buffer underflow detected at ${b}`,
    ]);
  });

  test("invalid realloc of a freed and of a foreign pointer returns NULL", () => {
    const r = child(`
      const p = memory.safeMalloc(16);
      memory.safeFree(p);
      const q = memory.safeRealloc(p, 64);
      const { ptr } = await import("bun:ffi");
      const f = ptr(new Uint8Array(32));
      const g = memory.safeRealloc(f, 64);
      console.log(hex(p), hex(f), q === null, g === null);
    `);
    const [p, f, qNull, gNull] = r.stdout.trim().split(" ");
    expect([qNull, gNull]).toEqual(["true", "true"]);
    expect(r.diag).toEqual([`AETHER MEMORY ERROR: Invalid realloc of ${p}`, `AETHER MEMORY ERROR: Invalid realloc of ${f}`]);
  });

  test("a write after free is reported when the block leaves the quarantine", () => {
    const r = child(`
      memory.setOption("quarantine_bytes", 4096);
      const p = memory.safeMalloc(200);
      memory.safeFree(p);
      memory.view(p, 200)[150] = 1;           // the bug
      for (let i = 0; i < 100; i++) memory.safeFree(memory.safeMalloc(200)); // pushes p out
      const ev = memory.errors().find((e) => e.kind === "use-after-free");
      console.log(hex(p), ev.detail);
    `);
    const [p, offset] = r.stdout.trim().split(" ");
    expect(r.diag).toEqual([`AETHER MEMORY ERROR: Use after free detected at ${p}`]);
    expect(offset).toBe("150");
  });

  test("leak report lists address and size, largest first, and the count is returned", () => {
    const r = child(`
      const a = memory.safeMalloc(100), b = memory.safeMalloc(5000), c = memory.safeMalloc(7);
      const n = memory.checkLeaks();
      console.log(n, hex(a), hex(b), hex(c));
    `);
    const [n, a, b, c] = r.stdout.trim().split(" ");
    expect(n).toBe("3");
    expect(r.diag).toEqual([
      `AETHER MEMORY: 3 allocation(s) leaked: ${b} (5000 bytes), ${a} (100 bytes), ${c} (7 bytes); 5107 bytes in total`,
    ]);
  });

  test("the leak list is capped by leak_report_max", () => {
    const r = child(`
      for (let i = 1; i <= 10; i++) memory.safeMalloc(i * 10);
      memory.checkLeaks();
    `, { AETHER_LEAK_REPORT_MAX: "2" });
    expect(r.diag).toHaveLength(1);
    expect(r.diag[0]).toMatch(new RegExp(`^AETHER MEMORY: 10 allocation\\(s\\) leaked: ${HEX} \\(100 bytes\\), ${HEX} \\(90 bytes\\), \\.\\.\\. 8 more; 550 bytes in total$`));
  });

  test("correct use prints nothing at all", () => {
    const r = child(`
      const live = [];
      for (let i = 0; i < 5000; i++) {
        const n = 1 + ((i * 7919) % 3000);
        const p = memory.safeMalloc(n);
        memory.view(p, n).fill(i & 255);
        live.push(p);
        if (i % 3 === 0) memory.safeFree(live.shift());
        if (i % 5 === 0) { const q = memory.safeRealloc(live.pop(), n * 3); live.push(q); }
      }
      for (const p of live) memory.safeFree(p);
      console.log(memory.checkLeaks(), memory.usage(), memory.checkAll());
    `);
    expect(r.stdout.trim()).toBe("0 0 0");
    expect(r.stderr).toBe("");
  });

  test("abort_on_error aborts after printing the report", () => {
    const r = child(`
      const p = memory.safeMalloc(8);
      memory.safeFree(p);
      memory.safeFree(p);
      console.log("not reached");
    `, { AETHER_ABORT_ON_ERROR: "1" });
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain("not reached");
    expect(r.diag).toHaveLength(1);
    expect(r.diag[0]).toStartWith("AETHER MEMORY ERROR: Double free detected at 0x");
  });

  test("AETHER_LOG_FILE sends diagnostics to a file instead of stderr", () => {
    const log = `/tmp/aether-test-${process.pid}-${Date.now()}.log`;
    const r = child(`
      const p = memory.safeMalloc(8); memory.safeFree(p); memory.safeFree(p);
      console.log(hex(p));
    `, { AETHER_LOG_FILE: log });
    expect(r.diag).toEqual([]);
    const text = require("node:fs").readFileSync(log, "utf8");
    require("node:fs").rmSync(log);
    expect(text).toBe(`AETHER MEMORY ERROR: Double free detected at ${r.stdout.trim()}\n`);
  });

  test("AETHER_QUIET records errors without printing them", () => {
    const r = child(`
      const p = memory.safeMalloc(8); memory.safeFree(p); memory.safeFree(p);
      console.log(memory.stats().errors["double-free"], memory.errors().length);
    `, { AETHER_QUIET: "1" });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("1 1");
  });

  test("a bad environment value is named and ignored, not fatal", () => {
    const r = child(`console.log(memory.getOption("quarantine_bytes"));`, { AETHER_QUARANTINE_BYTES: "lots" });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe("262144");
    expect(r.diag).toEqual([
      "AETHER MEMORY: ignoring AETHER_QUARANTINE_BYTES=lots: option quarantine_bytes: 'lots' is not a byte count (digits with an optional k, m or g)",
    ]);
  });

  test("check_all finds an overflow in a block that is never freed", () => {
    const r = child(`
      const p = memory.safeMalloc(50);
      memory.view(p, 51)[50] = 0;
      console.log(memory.checkAll(), hex(p));
    `);
    const [n, p] = r.stdout.trim().split(" ");
    expect(n).toBe("1");
    expect(r.diag).toEqual([`AETHER MEMORY ERROR: Buffer overflow detected at ${p}`]);
  });

  test("realloc reports an overflow or underflow of the block it is given, then resizes it as asked", () => {
    const r = child(`
      const a = memory.safeMalloc(40);
      memory.view(a, 40).fill(5);
      memory.view(a, 41)[40] = 1;                    // overflow by one
      const a2 = memory.safeRealloc(a, 4000);        // moves
      const b = memory.safeMalloc(40);
      memory.view(at(b, -1), 1)[0] = 0;              // underflow by one
      const b2 = memory.safeRealloc(b, 16);          // in place
      console.log(hex(a), hex(b), memory.view(a2, 40).every((x) => x === 5), memory.usableSize(b2));
      memory.safeFree(a2);
      memory.safeFree(b2);
    `);
    const [a, b, kept, size] = r.stdout.trim().split(" ");
    expect(r.diag).toEqual([
      `AETHER MEMORY ERROR: Buffer overflow detected at ${a}`,
      `AETHER MEMORY ERROR: Buffer underflow detected at ${b}`,
    ]);
    expect(kept).toBe("true");
    expect(size).toBe("16");
  });

  test("check_all finds an underflow in a block that is never freed, and counts each damaged block once", () => {
    const r = child(`
      const p = memory.safeMalloc(64);
      const q = memory.safeMalloc(64);
      memory.view(at(p, -3), 1)[0] ^= 0xff;
      memory.view(q, 70)[66] ^= 0xff;
      console.log(memory.checkAll(), hex(p), hex(q));
    `);
    const [n, p, q] = r.stdout.trim().split(" ");
    expect(n).toBe("2");
    expect(r.diag.sort()).toEqual([`AETHER MEMORY ERROR: Buffer overflow detected at ${q}`, `AETHER MEMORY ERROR: Buffer underflow detected at ${p}`].sort());
  });

  test("a larger redzone checks every one of its bytes", () => {
    const r = child(`
      const out = [];
      for (const k of [0, 31, 63]) {
        const p = memory.safeMalloc(40);
        memory.view(p, 40 + 64)[40 + k] = 0;
        memory.safeFree(p);
        out.push(hex(p));
      }
      const q = memory.safeMalloc(40);
      memory.view(at(q, -64), 1)[0] = 0;
      memory.safeFree(q);
      out.push(hex(q));
      console.log(memory.getOption("redzone"), out.join(" "));
    `, { AETHER_REDZONE: "64" });
    const [rz, a, b, c, d] = r.stdout.trim().split(" ");
    expect(rz).toBe("64");
    expect(r.diag).toEqual([
      `AETHER MEMORY ERROR: Buffer overflow detected at ${a}`,
      `AETHER MEMORY ERROR: Buffer overflow detected at ${b}`,
      `AETHER MEMORY ERROR: Buffer overflow detected at ${c}`,
      `AETHER MEMORY ERROR: Buffer underflow detected at ${d}`,
    ]);
  });
});

describe("API behaviour (in process)", () => {
  memory.init();

  test("zero size returns NULL; realloc(p, 0) frees; realloc(NULL, n) allocates", () => {
    expect(memory.safeMalloc(0)).toBeNull();
    expect(memory.safeCalloc(0, 8)).toBeNull();
    expect(memory.safeCalloc(8, 0)).toBeNull();
    const live = memory.liveBlocks(0).total;
    const p = memory.safeRealloc(null, 32);
    expect(p).not.toBeNull();
    expect(memory.liveBlocks(0).total).toBe(live + 1);
    expect(memory.safeRealloc(p, 0)).toBeNull();
    expect(memory.liveBlocks(0).total).toBe(live);
  });

  test("calloc is zeroed and overflow-checked", () => {
    const p = memory.safeCalloc(1000, 3)!;
    expect(memory.view(p, 3000).every((b) => b === 0)).toBe(true);
    memory.safeFree(p);
    expect(memory.safeCalloc(2 ** 40, 2 ** 30)).toBeNull();
    expect(memory.lastError().code).toBe("AETHER_ERR_SIZE_OVERFLOW");
  });

  test("every pointer is aligned to max_align_t (16), aligned_alloc to its alignment", () => {
    const ps = [];
    for (let n = 1; n < 2000; n += 37) {
      const p = memory.safeMalloc(n)!;
      expect(addr(p) % 16).toBe(0);
      ps.push(p);
    }
    for (const p of ps) memory.safeFree(p);
    for (let a = 1; a <= 1 << 21; a *= 2) {
      const p = memory.alignedAlloc(a, 100)!;
      expect(addr(p) % Math.max(a, 16)).toBe(0);
      memory.view(p, 100).fill(1);
      memory.safeFree(p);
    }
    expect(memory.alignedAlloc(48, 10)).toBeNull();
    expect(memory.lastError().code).toBe("AETHER_ERR_NOT_POWER_OF_TWO");
  });

  test("realloc preserves data when growing, shrinking and crossing into huge blocks", () => {
    let p = memory.safeMalloc(10)!;
    memory.view(p, 10).set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const n of [11, 100, 5000, 300_000, 3_000_000, 50, 10]) {
      p = memory.safeRealloc(p, n)!;
      expect(p).not.toBeNull();
      expect(Array.from(memory.view(p, 10))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(memory.usableSize(p)).toBe(n);
    }
    memory.safeFree(p);
  });

  test("usage and live counts are exact", () => {
    const before = memory.stats();
    const sizes = [1, 16, 17, 100, 4096, 70_000, 2_000_000];
    const ps = sizes.map((n) => memory.safeMalloc(n)!);
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(memory.usage()).toBe(before.liveBytes + total);
    const s = memory.stats();
    expect(s.liveCount).toBe(before.liveCount + sizes.length);
    expect(s.totalAllocs - before.totalAllocs).toBe(sizes.length);
    expect(s.peakBytes).toBeGreaterThanOrEqual(s.liveBytes);
    expect(memory.liveBlocks(0).total).toBe(before.liveCount + sizes.length);
    const top = memory.liveBlocks(2).blocks;
    expect(top.map((b) => b.size)).toEqual([2_000_000, 70_000]);
    for (const p of ps) memory.safeFree(p);
    expect(memory.usage()).toBe(before.liveBytes);
    expect(memory.stats().liveCount).toBe(before.liveCount);
  });

  test("peak is exact on one thread", () => {
    const base = memory.usage();
    const a = memory.safeMalloc(1000)!, b = memory.safeMalloc(3000)!;
    memory.safeFree(a);
    memory.safeFree(b);
    expect(memory.stats().peakBytes).toBeGreaterThanOrEqual(base + 4000);
  });

  test("usable size is 0 for anything that is not a live allocation", () => {
    const p = memory.safeMalloc(33)!;
    expect(memory.usableSize(p)).toBe(33);
    expect(memory.usableSize((addr(p) + 8) as never)).toBe(0);
    memory.safeFree(p);
    expect(memory.usableSize(p)).toBe(0);
    expect(memory.usableSize(null)).toBe(0);
  });

  test("options: set, get, and refusals", () => {
    const q = memory.getOption("quarantine_bytes");
    memory.setOption("quarantine_bytes", "1m");
    expect(memory.getOption("quarantine_bytes")).toBe(String(1 << 20));
    memory.setOption("quarantine_bytes", q);
    expect(() => memory.setOption("nonsense" as never, "1")).toThrow(/unknown option 'nonsense'/);
    expect(() => memory.setOption("abort_on_error", "maybe")).toThrow(/not a boolean/);
    expect(() => memory.setOption("redzone", 16)).toThrow(/before the first allocation/);
    expect(() => memory.setOption("log_file", "/nonexistent-dir/x.log")).toThrow(/cannot open/);
  });

  test("the unchecked fast path allocates and frees", () => {
    const p = memory.malloc(64)!;
    memory.view(p, 64).fill(3);
    memory.free(p);
    expect(memory.malloc(0)).toBeNull();
  });
});
