// The hash-chained audit files: what a line holds, the chain recomputed independently (Bun's SHA-256), and
// tampering: an edited, removed, duplicated or reordered line is named; a cut tail needs the head. Also the
// per-context file, AETHER_AUDIT_LOG, continuing an existing file, and `aether audit verify`.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DevicePools, verifyAuditFile, verifyAuditText } from "../cli/native/devpool.ts";
import { aether, runSnippet, runSnippetAsync } from "./helpers/run.ts";

const dir = mkdtempSync(join(tmpdir(), "aether-audit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (s: string) => new Bun.CryptoHasher("sha256").update(s).digest("hex");

/** A small session written to a fresh audit file; returns its lines. */
function session(name: string, extra?: (p: DevicePools) => void): { file: string; lines: string[] } {
  const file = join(dir, name);
  const p = DevicePools.create({ backend: "host", ignoreEnvAudit: true });
  try {
    p.setAuditLog(file);
    const a = p.context("acme", "rust", "secret");
    const b = p.context("globex", "julia");
    const h = a.alloc(1000);
    a.write(h, 0, new Uint8Array(10));
    try {
      b.read(h, 0, 1);
    } catch {}
    a.free(h);
    try {
      a.free(h);
    } catch {}
    extra?.(p);
    p.flushAudit();
  } finally {
    p.destroy();
  }
  return { file, lines: readFileSync(file, "utf8").trimEnd().split("\n") };
}

describe("the chain", () => {
  test("each line is a record whose hash and prev chain under SHA-256, recomputed here", () => {
    const { file, lines } = session("plain.jsonl");
    expect(lines.length).toBe(8); // 2 contexts, alloc, write, denied read, wipe, free, stale free
    let prev = "0".repeat(64);
    lines.forEach((line, i) => {
      const rec = JSON.parse(line);
      expect(Object.keys(rec)).toEqual(["n", "seq", "time", "tenant", "runtime", "level", "ctx", "op", "handle", "size", "result", "prev", "hash"]);
      expect(rec.n).toBe(i + 1);
      expect(rec.prev).toBe(prev);
      expect(rec.hash).toBe(sha256(line.slice(0, line.lastIndexOf(',"hash":'))));
      expect(rec.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      prev = rec.hash;
    });
    const recs = lines.map((l) => JSON.parse(l));
    expect(recs.map((r) => `${r.tenant}/${r.runtime}:${r.op}:${r.result}`)).toEqual([
      "acme/rust:context:ok",
      "globex/julia:context:ok",
      "acme/rust:alloc:ok",
      "acme/rust:write:ok",
      "globex/julia:read:AETHER_ERR_ACCESS_DENIED",
      "acme/rust:wipe:ok",
      "acme/rust:free:ok",
      "acme/rust:free:AETHER_ERR_STALE_HANDLE",
    ]);
    expect(recs[2].size).toBe(1000);
    expect(recs[2].level).toBe("secret");
    expect(recs[2].handle).toMatch(/^0x[0-9a-f]{16}$/);
    const v = verifyAuditFile(file);
    expect(v).toMatchObject({ ok: true, status: "ok", records: 8, badLine: 0, head: prev });
  });

  const base = () => session(`t${Math.random().toString(36).slice(2)}.jsonl`).lines;
  const check = (lines: string[]) => verifyAuditText(`${lines.join("\n")}\n`);

  test("an edited line is named by its own hash", () => {
    const lines = base();
    lines[4] = lines[4]!.replace('"size":1,', '"size":9,');
    expect(check(lines)).toMatchObject({ ok: false, status: "AETHER_ERR_TAMPERED", badLine: 5, records: 4 });
    expect(check(lines).reason).toContain("n=5 was changed");
  });

  test("an edited line whose hash was recomputed breaks the next line's prev", () => {
    const lines = base();
    const edited = lines[2]!.replace('"size":1000,', '"size":10,');
    const body = edited.slice(0, edited.lastIndexOf(',"hash":'));
    lines[2] = `${body},"hash":"${sha256(body)}"}`;
    const r = check(lines);
    expect(r).toMatchObject({ ok: false, status: "AETHER_ERR_TAMPERED", badLine: 4 });
    expect(r.reason).toContain("does not chain to line 3");
  });

  test("a removed line is named where the gap is", () => {
    const lines = base();
    lines.splice(5, 1);
    const r = check(lines);
    expect(r).toMatchObject({ ok: false, status: "AETHER_ERR_TAMPERED", badLine: 6 });
    expect(r.reason).toContain("removed");
    const first = base().slice(1);
    expect(check(first)).toMatchObject({ ok: false, badLine: 1 });
  });

  test("reordered and duplicated lines are named", () => {
    const lines = base();
    [lines[3], lines[4]] = [lines[4]!, lines[3]!];
    expect(check(lines)).toMatchObject({ ok: false, status: "AETHER_ERR_TAMPERED", badLine: 4 });
    const dup = base();
    dup.splice(3, 0, dup[2]!);
    const r = check(dup);
    expect(r).toMatchObject({ ok: false, badLine: 4 });
    expect(r.reason).toContain("reordered or duplicated");
  });

  test("a cut tail still chains: only the head recorded elsewhere shows it", () => {
    const lines = base();
    const full = check(lines);
    const cut = check(lines.slice(0, 5));
    expect(cut.ok).toBe(true);
    expect(cut.head).not.toBe(full.head);
  });

  test("lines that are not records are malformed, named", () => {
    const lines = base();
    lines[2] = "not json";
    expect(check(lines)).toMatchObject({ ok: false, status: "AETHER_ERR_MALFORMED", badLine: 3 });
    const missing = base();
    missing[1] = missing[1]!.replace(/"op":"[a-z]+",/, "");
    expect(check(missing)).toMatchObject({ status: "AETHER_ERR_MALFORMED", badLine: 2 });
    const blank = base();
    blank.splice(2, 0, "");
    expect(check(blank)).toMatchObject({ status: "AETHER_ERR_MALFORMED", badLine: 3 });
    expect(verifyAuditText("")).toMatchObject({ ok: true, records: 0 });
  });
});

describe("files", () => {
  test("a per-context file holds only that context's records, with its own chain", () => {
    const file = join(dir, "one-context.jsonl");
    const p = DevicePools.create({ backend: "host", ignoreEnvAudit: true });
    try {
      const a = p.context("acme", "rust");
      const b = p.context("globex", "julia");
      p.setAuditLog(file, b);
      a.free(a.alloc(10));
      b.free(b.alloc(20));
      a.free(a.alloc(30));
      p.flushAudit();
    } finally {
      p.destroy();
    }
    const recs = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(recs.map((r) => [r.n, r.tenant, r.op, r.size])).toEqual([
      [1, "globex", "alloc", 20],
      [2, "globex", "free", 20],
    ]);
    expect(verifyAuditFile(file).ok).toBe(true);
  });

  test("an existing file is continued, and one that ends with a forged record is refused", () => {
    const { file } = session("continued.jsonl");
    session("continued.jsonl"); // same file again: the chain goes on
    const lines = readFileSync(file, "utf8").trim().split("\n");
    expect(lines).toHaveLength(16);
    expect(JSON.parse(lines[8]!).n).toBe(9);
    expect(verifyAuditFile(file)).toMatchObject({ ok: true, records: 16 });
    writeFileSync(file, `${lines.slice(0, -1).join("\n")}\n${lines.at(-1)!.replace('"size":0', '"size":1')}\n`);
    const p = DevicePools.create({ backend: "host", ignoreEnvAudit: true });
    try {
      expect(() => p.setAuditLog(file)).toThrow(/last record's hash does not match/);
      writeFileSync(file, `${lines.join("\n")}\n{"n":17,`);
      expect(() => p.setAuditLog(file)).toThrow(/incomplete record/);
    } finally {
      p.destroy();
    }
  });

  test("AETHER_AUDIT_LOG audits the whole process", () => {
    const file = join(dir, "env.jsonl");
    const r = runSnippet(
      `import { DevicePools } from "aether-memory";
       const p = DevicePools.create({ backend: "host" });
       const c = p.context("env", "rust");
       c.free(c.alloc(64));
       p.destroy();`,
      { env: { AETHER_AUDIT_LOG: file } },
    );
    expect(r.code).toBe(0);
    const recs = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(recs.map((x) => x.op)).toEqual(["context", "alloc", "free"]);
  });

  test("AETHER_AUDIT_LOG: two managers of one process, and two processes, share one file and one chain", async () => {
    const file = join(dir, "shared.jsonl");
    const code = `import { DevicePools } from "aether-memory";
       const a = DevicePools.create({ backend: "host" });
       const b = DevicePools.create({ backend: "host" });
       const ca = a.context("a-" + process.pid, "rust"), cb = b.context("b-" + process.pid, "julia");
       for (let i = 0; i < 3000; i++) { ca.free(ca.alloc(64)); cb.free(cb.alloc(64)); if (i % 500 === 0) { a.flushAudit(); b.flushAudit(); } }
       a.destroy();
       b.destroy();`;
    const one = runSnippet(code, { env: { AETHER_AUDIT_LOG: file } });
    expect(one.code).toBe(0);
    const first = verifyAuditFile(file);
    expect(first.records).toBe(2 * (1 + 2 * 3000));
    // two processes at once, appending to the same file
    const both = await Promise.all([0, 1].map(() => runSnippetAsync(code, { env: { AETHER_AUDIT_LOG: file } })));
    for (const r of both) expect(r.code).toBe(0);
    const all = verifyAuditFile(file);
    expect(all.records).toBe(3 * 2 * (1 + 2 * 3000));
    const ns = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l).n);
    expect(ns.every((n, i) => n === i + 1)).toBe(true);
  });

  test("many threads' records, under backpressure from a small ring, all reach the file in order", () => {
    const file = join(dir, "pressure.jsonl");
    const p = DevicePools.create({ backend: "host", ignoreEnvAudit: true, auditRing: 64 });
    try {
      p.setAuditLog(file);
      const c = p.context("pressure", "rust");
      for (let i = 0; i < 20_000; i++) c.free(c.alloc(256));
      p.flushAudit();
      const v = verifyAuditFile(file);
      expect(v).toMatchObject({ ok: true, records: 40_001 });
      const seqs = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l).seq);
      expect(seqs.every((s, i) => s === i + 1)).toBe(true);
    } finally {
      p.destroy();
    }
  });
});

describe("aether audit verify", () => {
  test("ok: exit 0 with the record count and head; tampered: exit 1 naming the line", () => {
    const { file, lines } = session("cli.jsonl");
    const ok = aether(["audit", "verify", file]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`${lines.length} records verify`);
    const head = JSON.parse(lines.at(-1)!).hash;
    expect(ok.stdout).toContain(head);
    expect(aether(["audit", "verify", file, "--expect-head", head]).code).toBe(0);
    const wrongHead = aether(["audit", "verify", file, "--expect-head", "0".repeat(64), "--json"]);
    expect(wrongHead.code).toBe(1);
    expect(JSON.parse(wrongHead.stdout).reason).toContain("removed from its end");
    const bad = join(dir, "cli-bad.jsonl");
    writeFileSync(bad, `${[lines[0], lines[2], ...lines.slice(3)].join("\n")}\n`);
    const t = aether(["audit", "verify", bad]);
    expect(t.code).toBe(1);
    expect(t.stdout).toMatch(/^AETHER_ERR_TAMPERED: .*cli-bad\.jsonl: line 2: record n=3 follows n=1/);
    const j = JSON.parse(aether(["audit", "verify", bad, "--json"]).stdout);
    expect(j).toMatchObject({ verdict: "tampered", status: "AETHER_ERR_TAMPERED", badLine: 2, records: 1 });
  });

  test("usage mistakes exit 2 in one line", () => {
    for (const args of [["audit", "verify"], ["audit", "verify", join(dir, "missing.jsonl")], ["audit", "verify", dir],
      ["audit", "verify", join(dir, "cli.jsonl"), "--expect-head", "xyz"]]) {
      const r = aether(args);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});
