// reports.ts: read sanitizer reports (ASan, LSan, UBSan, TSan, MSan, and the runtimes' own CHECK failures) out
// of their log files, name each one (its kind and the first frame in this repository's code), and fold repeats
// together. The full text stays in the log file the finding points to.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { PACKAGE_ROOT } from "../../native/ffi.ts";

export interface Frame {
  index: number;
  function: string;
  /** source file as the report gives it (absolute, or relative to where the code was compiled) */
  file?: string;
  line?: number;
  /** module+offset when there is no source location */
  module?: string;
}

export interface Report {
  /** asan, lsan, ubsan, tsan, msan, or the runtime that failed a CHECK */
  sanitizer: "asan" | "lsan" | "ubsan" | "tsan" | "msan";
  /** "heap-buffer-overflow", "data race", "signed-integer-overflow", "use-of-uninitialized-value", "direct leak",
   * "runtime CHECK failure", ... */
  kind: string;
  /** the report's first line, trimmed of pids and addresses where they vary between runs */
  headline: string;
  /** the first frame in this repository's code (csrc/, test/, fuzz/), or the first frame at all */
  frame?: Frame;
  /** where the text came from */
  log: string;
  text: string;
}

const START = /^(?:==\d+==\s*)?(ERROR|WARNING): (AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer|UndefinedBehaviorSanitizer):?\s*(.*)$/;
const UBSAN = /^(.*?):(\d+):(\d+): runtime error: (.*)$/;
// "FATAL: ThreadSanitizer CHECK failed: <file>:<line> "<condition>" (0x40, 0x40)", "==12==AddressSanitizer CHECK failed: ..."
const CHECK_FAILED = /^(?:==\d+==\s*)?(?:FATAL: )?(\w*Sanitizer):? CHECK failed: (.*)$/;
const FATAL = /^(?:==\d+==\s*)?FATAL: (AddressSanitizer|LeakSanitizer|ThreadSanitizer|MemorySanitizer): (.*)$/;
const SUMMARY = /^SUMMARY: (\w+Sanitizer): (\S+(?: \([^)]*\))?)/;
const FRAME = /^\s*#(\d+)\s+(?:0x[0-9a-f]+\s+)?(?:in\s+)?(.*)$/;
const LEAK = /^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\) allocated from:/;

const BY_TITLE: Record<string, Report["sanitizer"]> = {
  AddressSanitizer: "asan",
  LeakSanitizer: "lsan",
  ThreadSanitizer: "tsan",
  MemorySanitizer: "msan",
  UndefinedBehaviorSanitizer: "ubsan",
};

export function parseFrame(line: string): Frame | undefined {
  const m = FRAME.exec(line);
  if (!m) return undefined;
  const index = Number(m[1]);
  let rest = m[2]!.trim().replace(/\s+\(BuildId: [0-9a-f]+\)$/, "");
  // module+offset at the end: "(libaether-tsan.so+0x4dff)" or "(/tmp/x+0x1140)"
  let module: string | undefined;
  const mod = /\s*\(([^()]*\+0x[0-9a-f]+|0x[0-9a-f]+)\)$/.exec(rest);
  if (mod) {
    module = mod[1];
    rest = rest.slice(0, mod.index).trim();
  }
  if (rest.startsWith("(") && rest.endsWith(")")) return { index, function: "", module: rest.slice(1, -1) };
  const loc = /^(.*?)\s+(\S+?):(\d+)(?::\d+)?$/.exec(rest);
  if (loc) {
    const fn = loc[1]!.trim();
    return { index, function: fn === "<null>" ? "" : fn, file: loc[2], line: Number(loc[3]), module };
  }
  const fn = rest.split(/\s+/)[0] ?? "";
  return { index, function: fn === "<null>" ? "" : fn, module };
}

/** The repository-relative path of a frame's file, if it is one of ours (not a system header, not the runtime). */
export function ourFile(file: string | undefined, root = PACKAGE_ROOT): string | undefined {
  if (!file || file === "<null>") return undefined;
  const abs = isAbsolute(file) ? file : resolve(root, file);
  const rel = relative(root, abs);
  if (rel.startsWith("..") || isAbsolute(rel) || rel.startsWith("node_modules")) return undefined;
  return rel;
}

/** A frame inside a sanitizer runtime (its interceptors, its CHECK machinery). */
function runtimeFrame(f: Frame): boolean {
  return (
    /libsanitizer|compiler-rt|sanitizer_common/.test(f.file ?? "") ||
    /lib(a|t|ub|l|m)san\.so|libclang_rt/.test(f.module ?? "") ||
    /^(__interceptor_|___interceptor_|__sanitizer|__asan|__tsan|__msan|__lsan|__ubsan)/.test(f.function)
  );
}

/** The first frame in this repository's code; else the first one outside the sanitizer runtime. */
function topFrame(frames: Frame[], root: string): Frame | undefined {
  const ours = frames.find((f) => ourFile(f.file, root) !== undefined);
  if (ours) return { ...ours, file: ourFile(ours.file, root) };
  return frames.find((f) => !runtimeFrame(f) && (f.function !== "" || f.file)) ?? frames[0];
}

function kindOf(sanitizer: Report["sanitizer"], rest: string, lines: string[]): string {
  const summary = lines.map((l) => SUMMARY.exec(l)).find((m) => m);
  if (sanitizer === "tsan") return rest.replace(/\s*\(pid=\d+\)\s*$/, "").trim();
  if (summary && sanitizer !== "lsan") return summary[2]!.replace(/\s*\(.*\)$/, "");
  // "heap-buffer-overflow on address 0x...": the words before " on " / " at "
  return rest.split(/ on | at |:/)[0]!.trim() || "report";
}

const UBSAN_KINDS: [RegExp, string][] = [
  [/^signed integer overflow/, "signed-integer-overflow"],
  [/^unsigned integer overflow/, "unsigned-integer-overflow"],
  [/^shift exponent|^left shift/, "shift"],
  [/^division by zero|^division of/, "integer-divide-by-zero"],
  [/^load of misaligned|^store to misaligned|^member access within misaligned|misaligned address/, "misaligned-pointer-use"],
  [/null pointer/, "null-pointer-use"],
  [/^index .* out of bounds/, "bounds"],
  [/^load of value .* which is not a valid value/, "invalid-value"],
  [/^applying (non-zero )?offset|pointer overflow|^addition of unsigned offset/, "pointer-overflow"],
  [/^execution reached/, "unreachable"],
  [/^negation of/, "signed-integer-overflow"],
  [/^variable length array bound/, "vla-bound"],
  [/is outside the range of representable values/, "float-cast-overflow"],
  [/^call to function .* through pointer to incorrect function type/, "function-type-mismatch"],
  [/^passing zero to|^null pointer returned/, "nonnull"],
];

function ubsanKind(message: string): string {
  for (const [re, kind] of UBSAN_KINDS) if (re.test(message)) return kind;
  return message.split(":")[0]!.trim();
}

/** Split one log text into reports. A report runs from its first line to its SUMMARY line, the next report's
 * first line, or the end; a LeakSanitizer report gives one report per leak it lists. */
export function parseReports(text: string, log: string, root = PACKAGE_ROOT): Report[] {
  const lines = text.split("\n");
  const out: Report[] = [];
  type Open = { sanitizer: Report["sanitizer"]; kind?: string; headline: string; start: number; rest: string };
  let open: Open | undefined;

  const close = (end: number) => {
    if (!open) return;
    const body = lines.slice(open.start, end);
    const text = body.join("\n").trimEnd();
    if (open.sanitizer === "lsan" && /detected memory leaks/.test(open.headline)) {
      // One finding per leak record: its size and its allocation stack.
      let leakAt = -1;
      const flush = (until: number) => {
        if (leakAt < 0) return;
        const m = LEAK.exec(body[leakAt]!)!;
        const frames = body.slice(leakAt + 1, until).map(parseFrame).filter((f): f is Frame => !!f);
        out.push({
          sanitizer: "lsan",
          kind: `${m[1]!.toLowerCase()} leak`,
          headline: `${m[1]} leak of ${m[2]} byte(s) in ${m[3]} object(s)`,
          frame: topFrame(frames, root),
          log,
          text,
        });
      };
      body.forEach((l, i) => {
        if (LEAK.test(l)) {
          flush(i);
          leakAt = i;
        } else if (/^SUMMARY:/.test(l)) {
          flush(i);
          leakAt = -1;
        }
      });
      flush(body.length);
      open = undefined;
      return;
    }
    // The first stack of the report: frames up to the first line that is neither a frame nor blank-after-frames.
    const frames: Frame[] = [];
    let seen = false;
    for (const l of body.slice(1)) {
      const f = parseFrame(l);
      if (f) {
        frames.push(f);
        seen = true;
      } else if (seen) break;
    }
    out.push({
      sanitizer: open.sanitizer,
      kind: open.kind ?? kindOf(open.sanitizer, open.rest, body),
      headline: open.headline,
      frame: topFrame(frames, root),
      log,
      text,
    });
    open = undefined;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    let m: RegExpExecArray | null;
    if ((m = START.exec(line))) {
      close(i);
      const sanitizer = BY_TITLE[m[2]!]!;
      // pids and the registers of "at pc 0x.. bp 0x.. sp 0x.." differ from run to run
      const what = m[3]!.replace(/\s*\(pid=\d+\)/, "").replace(/ at pc 0x[0-9a-f]+ bp 0x[0-9a-f]+ sp 0x[0-9a-f]+/, "");
      open = { sanitizer, headline: `${m[2]}: ${what}`.trim(), start: i, rest: m[3]! };
      continue;
    }
    if ((m = UBSAN.exec(line))) {
      close(i);
      open = { sanitizer: "ubsan", kind: ubsanKind(m[4]!), headline: `runtime error: ${m[4]}`, start: i, rest: m[4]! };
      continue;
    }
    if ((m = CHECK_FAILED.exec(line))) {
      close(i);
      const sanitizer = BY_TITLE[m[1]!] ?? "asan";
      open = { sanitizer, kind: "runtime CHECK failure", headline: `${m[1]} CHECK failed: ${m[2]}`, start: i, rest: m[2]! };
      continue;
    }
    if ((m = FATAL.exec(line)) && !open) {
      open = { sanitizer: BY_TITLE[m[1]!]!, kind: "runtime failure", headline: `${m[1]}: ${m[2]}`, start: i, rest: m[2]! };
      continue;
    }
    if (open && SUMMARY.test(line) && open.sanitizer !== "lsan") close(i + 1);
    else if (open?.sanitizer === "lsan" && SUMMARY.test(line)) close(i + 1);
  }
  close(lines.length);
  return out;
}

/** Every report in the log files whose names start with prefix (the runtimes append .<pid>), plus extra text
 * (a process's stderr, for what a runtime printed before it could open its log). */
export function collectReports(prefix: string, extra: { text: string; source: string }[] = []): Report[] {
  const dir = join(prefix, "..");
  const base = prefix.slice(dir.length + 1);
  const out: Report[] = [];
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      if (!f.startsWith(`${base}.`)) continue;
      const path = join(dir, f);
      out.push(...parseReports(readFileSync(path, "utf8"), path));
    }
  }
  for (const e of extra) out.push(...parseReports(e.text, e.source));
  return out;
}

export interface Finding {
  sanitizer: Report["sanitizer"];
  kind: string;
  /** "csrc/qstate_kernels.h:46 in norm2_avx512", or the module when there is no source line */
  where: string;
  headline: string;
  /** the scenarios that hit it ("native alloc/unit", "suite test/alloc.test.ts") */
  scenarios: string[];
  count: number;
  /** the log file of its first occurrence (the full report) */
  log: string;
}

export function whereOf(f: Frame | undefined): string {
  if (!f) return "(no stack)";
  const at = f.file ? `${f.file}:${f.line}` : f.module ? `(${f.module})` : "";
  return f.function ? `${at} in ${f.function}`.trim() : at || "(unknown)";
}

/** Fold reports with the same sanitizer, kind and place into one finding, counting them. */
export function dedupe(reports: { report: Report; scenario: string }[]): Finding[] {
  const byKey = new Map<string, Finding>();
  for (const { report, scenario } of reports) {
    const where = whereOf(report.frame);
    const key = `${report.sanitizer}|${report.kind}|${where}`;
    const f = byKey.get(key);
    if (f) {
      f.count++;
      if (!f.scenarios.includes(scenario)) f.scenarios.push(scenario);
    } else {
      byKey.set(key, { sanitizer: report.sanitizer, kind: report.kind, where, headline: report.headline, scenarios: [scenario], count: 1, log: report.log });
    }
  }
  return [...byKey.values()];
}
