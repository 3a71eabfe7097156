import { Command, Option } from "clipanion";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { BUILD_ROOT } from "../native/ffi.ts";
import { AetherCommand, parseCount, UsageError } from "../lib/command.ts";
import { buildVariant } from "../lib/build.ts";
import {
  analyzeStack,
  checkGate,
  displayName,
  findStackFiles,
  gatedFunctions,
  loadCallGraph,
  PROBE_FUNCTION,
  type StackAnalysis,
  type Violation,
} from "../lib/callgraph.ts";
import { exportedFunctions } from "../lib/elf.ts";
import { parseElf } from "../native/layout.ts";
import { color, formatBytes, printJson, table } from "../lib/output.ts";

/** Where `aether stack` builds libaether with AETHER_STACK_USAGE=ON. */
export const STACK_BUILD = join(BUILD_ROOT, "stack");

/** Build libaether with -fstack-usage -fcallgraph-info=su into build/stack/ (incremental) and return where its
 * .su/.ci files and its library are. */
export function buildStackVariant(): { dir: string; library: string } {
  const library = buildVariant({ variant: "release", defines: { AETHER_STACK_USAGE: "ON" }, folder: "stack", quiet: true });
  return { dir: join(STACK_BUILD, "CMakeFiles"), library };
}

/** The functions an ELF file exports (for the gate), read with the native parser. */
export function exportsOf(path: string): Set<string> {
  const data = readFileSync(path);
  return exportedFunctions(data, parseElf(data));
}

/** The specification's compile-time warning, for each function in an unguarded recursion (source order). */
export function recursionWarnings(a: StackAnalysis): string[] {
  const out: string[] = [];
  for (const c of a.cycles) {
    if (c.guarded) continue;
    for (const id of c.functions) {
      out.push(
        `[WARNING] Recursive function detected: ${displayName(a.graph, id)}\n` +
          "          Stack overflow possible. Consider tail call optimization or iterative approach.",
      );
    }
  }
  return out;
}

export interface StackReport {
  source: string;
  analysis: StackAnalysis;
  gated: string[];
  exportsFrom: string | null;
}

export class StackCommand extends AetherCommand {
  static override paths = [["stack"]];
  static override usage = Command.Usage({
    description: "stack-safety analysis: call graph, recursion, worst-case stack depth, a CI gate",
    details: `
      Reads the .su and .ci files GCC writes with -fstack-usage -fcallgraph-info=su (give the files or the
      folders that hold them; with none, libaether itself is built that way into build/stack/ and analysed).

      Prints the call graph; every recursion, direct (a function calling itself) and mutual (each strongly
      connected component of the graph, found with Tarjan's algorithm), and whether it is guarded (every loop
      passes through a function that calls aether_stack_probe, which fails the call before the stack runs out);
      functions with dynamic stack (alloca, VLAs: "dynamic" in the .su file, "dynamic,bounded" when GCC found a
      bound); indirect calls, whose callees are unknown; and for each function its worst-case stack depth
      through its callees with the path that reaches it, or "unbounded" when it is in or reaches a recursion.
      Calls to functions outside the inputs (libc) and indirect calls count --external-stack bytes (default 0).

      With --max-stack BYTES it is a CI gate: exit 1 if any exported function can need more than BYTES, reaches
      an unguarded recursion or an alloca/VLA of unknown size. Exported functions are those an ELF file exports
      (--elf; for libaether, its .so), else every function with external linkage.
    `,
    examples: [
      ["Analyse libaether (builds build/stack/ first)", "aether stack"],
      ["Gate libaether at 16 KiB", "aether stack --max-stack 16k --no-graph"],
      ["A project compiled with gcc -fstack-usage -fcallgraph-info=su", "aether stack path/to/build --max-stack 8192"],
    ],
  });

  inputs = Option.Rest({ name: "su/ci files or folders" });
  maxStack = Option.String("--max-stack", { description: "fail (exit 1) if an exported function can exceed BYTES or recurse" });
  externalStack = Option.String("--external-stack", "0", { description: "bytes charged for a call to an unknown callee (libc, indirect)" });
  elf = Option.String("--elf", { description: "take the exported functions from this ELF file's symbols" });
  all = Option.Boolean("--all", false, { description: "list the depth of every function, not only the exported ones" });
  graph = Option.Boolean("--graph", true, { description: "print the call graph (--no-graph to omit)" });
  json = Option.Boolean("--json", false, { description: "print JSON" });
  warningsOnly = Option.Boolean("--warnings-only", false, {
    description: "print only the recursion warnings (what a build with AETHER_STACK_USAGE=ON runs after linking)",
  });

  async execute(): Promise<number> {
    const maxStack = this.maxStack === undefined ? undefined : parseCount("--max-stack", this.maxStack, 1);
    const externalStack = parseCount("--external-stack", this.externalStack, 0);
    for (const p of this.inputs) if (!existsSync(p)) throw new UsageError(`no such file or folder: ${p}`);
    if (this.elf !== undefined && (!existsSync(this.elf) || !statSync(this.elf).isFile())) throw new UsageError(`no such file: ${this.elf}`);

    let inputs = this.inputs;
    let elf = this.elf;
    let source: string;
    if (inputs.length === 0) {
      const built = buildStackVariant();
      inputs = [built.dir];
      elf ??= built.library;
      source = `libaether (${STACK_BUILD})`;
    } else {
      source = inputs.join(", ");
    }
    const files = findStackFiles(inputs);
    if (files.ci.length === 0 && files.su.length === 0) {
      throw new UsageError(`no .su or .ci files in ${inputs.join(", ")}: compile with gcc -fstack-usage -fcallgraph-info=su`);
    }
    if (files.ci.length === 0) this.err("aether stack: no .ci files: the calls are unknown, depths are own frames (add -fcallgraph-info=su)");
    const analysis = analyzeStack(loadCallGraph(files.su, files.ci), { externalStack });
    const exports = elf ? exportsOf(elf) : undefined;
    const gated = gatedFunctions(analysis, exports);
    const violations = maxStack === undefined ? [] : checkGate(analysis, gated, maxStack);

    const warnings = recursionWarnings(analysis);
    if (this.warningsOnly) {
      for (const w of warnings) this.err(w);
      return 0;
    }
    if (this.json) printJson({ ...this.toJson({ source, analysis, gated, exportsFrom: elf ?? null }, maxStack, violations), warnings });
    else {
      this.print({ source, analysis, gated, exportsFrom: elf ?? null }, maxStack, violations);
      for (const w of warnings) this.err(w);
    }
    return violations.length > 0 ? 1 : 0;
  }

  private toJson(r: StackReport, maxStack: number | undefined, violations: Violation[]) {
    const a = r.analysis;
    const g = a.graph;
    const gated = new Set(r.gated);
    return {
      source: r.source,
      files: { su: g.suFiles.length, ci: g.ciFiles.length },
      exportsFrom: r.exportsFrom,
      functions: [...a.depths.keys()].map((id) => {
        const f = g.functions.get(id)!;
        const d = a.depths.get(id)!;
        return {
          id,
          name: f.name,
          display: displayName(g, id),
          file: f.file,
          line: f.line,
          local: f.local,
          exported: gated.has(id),
          frame: f.frame,
          qualifier: f.qualifier,
          depth: d.bytes,
          unbounded: d.bytes === null,
          path: d.path,
          cycle: d.cycle,
          unguardedRecursion: d.unguarded,
          dynamic: d.dynamic,
          unknownCallees: d.unknownCallees,
          calls: f.callsKnown ? f.calls : null,
        };
      }),
      recursion: a.cycles,
      dynamic: [...g.functions.values()].filter((f) => f.qualifier.startsWith("dynamic")).map((f) => ({ id: f.id, frame: f.frame, qualifier: f.qualifier })),
      indirect: a.indirect,
      external: Object.fromEntries([...g.external].sort()),
      externalStack: a.externalStack,
      gate: maxStack === undefined ? null : { maxStack, checked: r.gated.length, pass: violations.length === 0, violations },
    };
  }

  private print(r: StackReport, maxStack: number | undefined, violations: Violation[]): void {
    const a = r.analysis;
    const g = a.graph;
    const name = (id: string) => displayName(g, id);
    const fns = [...a.depths.keys()].map((id) => g.functions.get(id)!);
    const edges = fns.reduce((n, f) => n + f.calls.length, 0);
    this.out(
      `${color.bold("stack analysis")} of ${r.source}: ${g.ciFiles.length} .ci / ${g.suFiles.length} .su files, ${fns.length} functions, ` +
        `${edges} call sites, ${g.external.size} external callees, ${a.indirect.length} indirect calls`,
    );

    if (this.graph) {
      this.out("");
      this.out(color.bold("call graph"));
      for (const f of fns) {
        const defined = [...new Set(f.calls.filter((c) => g.functions.has(c.target)).map((c) => name(c.target)))];
        const ext = [...new Set(f.calls.filter((c) => !g.functions.has(c.target) && c.target !== "__indirect_call").map((c) => c.target))];
        const ind = f.calls.filter((c) => c.target === "__indirect_call").length;
        const parts = f.callsKnown ? [...defined] : [color.yellow("(calls unknown: no .ci file)")];
        if (ext.length) parts.push(color.dim(`[external: ${ext.join(", ")}]`));
        if (ind) parts.push(color.yellow(`[indirect x${ind}]`));
        this.out(`  ${name(f.id)} -> ${parts.length ? parts.join(", ") : color.dim("(leaf)")}`);
      }
    }

    this.out("");
    this.out(color.bold(`recursion: ${a.cycles.length === 0 ? "none" : `${a.cycles.length} cycle(s)`}`));
    for (const c of a.cycles) {
      const guard = c.guarded ? color.green(`guarded by ${PROBE_FUNCTION}`) : color.red("unguarded");
      const members = c.kind === "mutual" ? ` (component: ${c.functions.map(name).join(", ")})` : "";
      this.out(`  ${c.kind.padEnd(6)}  ${c.loop.map(name).join(" -> ")}  ${guard}${members}`);
    }

    const dynamic = fns.filter((f) => f.qualifier.startsWith("dynamic"));
    this.out("");
    this.out(color.bold(`dynamic stack (alloca, VLA): ${dynamic.length === 0 ? "none" : dynamic.length}`));
    for (const f of dynamic) {
      const what = f.qualifier === "dynamic" ? color.red("size unknown (unbounded)") : "bounded";
      this.out(`  ${name(f.id)}  ${f.frame} bytes, ${what}  ${color.dim(`${f.file}:${f.line}`)}`);
    }

    this.out("");
    this.out(color.bold(`indirect calls (unknown callees): ${a.indirect.length === 0 ? "none" : a.indirect.length}`));
    for (const i of a.indirect) this.out(`  ${name(i.function)}  ${color.dim(i.site || "(no call site)")}`);

    if (g.external.size > 0) {
      const ext = [...g.external].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]));
      this.out("");
      this.out(color.bold(`external callees (stack not in the inputs, counted as ${a.externalStack} bytes): ${ext.length}`));
      this.out(`  ${ext.map(([n, k]) => (k > 1 ? `${n} x${k}` : n)).join(", ")}`);
    }

    const listed = this.all ? fns.map((f) => f.id) : r.gated;
    const rows = listed
      .map((id) => ({ id, f: g.functions.get(id)!, d: a.depths.get(id)! }))
      .sort((x, y) => (y.d.bytes ?? Infinity) - (x.d.bytes ?? Infinity) || name(x.id).localeCompare(name(y.id)));
    this.out("");
    const which = this.all ? "every function" : r.exportsFrom ? `functions exported by ${r.exportsFrom}` : "functions with external linkage";
    this.out(color.bold(`worst-case stack depth (${which}, ${rows.length}; deepest first)`));
    const t = [["function", "frame", "worst case", "path"]];
    for (const { id, f, d } of rows) {
      const frame = `${f.frame}${f.qualifier === "dynamic" ? "+dyn" : f.qualifier === "dynamic,bounded" ? "(dyn)" : ""}`;
      let depth: string;
      if (d.bytes === null) depth = d.unguarded ? color.red("unbounded") : color.yellow("guarded");
      else depth = `${d.bytes}${d.unknownCallees ? "+" : ""}${d.dynamic === "dynamic" ? color.red("+dyn") : ""}`;
      t.push([name(id), frame, depth, d.path.map(name).join(" -> ")]);
    }
    this.out(table(t, [1, 2]).replace(/^/gm, "  "));
    this.out(color.dim("  + : reaches external or indirect calls whose stack is not known; +dyn: alloca/VLA of unknown size"));

    if (maxStack !== undefined) {
      this.out("");
      if (violations.length === 0) {
        const bounded = r.gated.map((id) => ({ id, b: a.depths.get(id)!.bytes })).filter((x) => x.b !== null) as { id: string; b: number }[];
        const deepest = bounded.sort((x, y) => y.b - x.b)[0];
        const guarded = r.gated.filter((id) => a.depths.get(id)!.bytes === null).length;
        this.out(
          `${color.green("stack gate: pass")}: ${r.gated.length} exported functions within ${maxStack} bytes (${formatBytes(maxStack)})` +
            (deepest ? `, deepest ${name(deepest.id)} ${deepest.b} bytes` : "") +
            (guarded ? `; ${guarded} reach only guarded recursion` : ""),
        );
      } else {
        this.out(`${color.red(color.bold("stack gate: FAIL"))}: ${violations.length} of ${r.gated.length} exported functions can exceed ${maxStack} bytes or recurse`);
        for (const v of violations) this.out(`  ${color.red("-")} ${name(v.function)}: ${v.reason}: ${v.detail}`);
      }
    }
  }
}
