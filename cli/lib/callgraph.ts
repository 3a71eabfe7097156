// callgraph.ts: stack-safety analysis of C code compiled by GCC with -fstack-usage -fcallgraph-info=su.
//
// Inputs. Each translation unit gives a .su file (one line per function: "file:line:col:name<TAB>bytes<TAB>
// static|dynamic|dynamic,bounded") and a .ci file, a VCG graph whose nodes are the functions the unit defines
// (label: name, location, frame size) or calls (shape ellipse: defined elsewhere), and whose edges are calls
// labelled with their call site. A function with internal linkage is titled "unit:name", so titles are unique
// across the program; calls through pointers go to the placeholder node "__indirect_call".
//
// Analysis. Nodes of all units are merged by title into one call graph. Its strongly connected components
// (Tarjan's algorithm, iterative) are the recursions: a component of several functions is mutual recursion,
// one function calling itself is direct recursion. Tarjan emits components callees-first, so one pass in that
// order gives every function its worst-case stack depth: its own frame plus the deepest of its callees, with
// the path that reaches it; a function that is in or reaches a cycle is unbounded. A cycle is "guarded" when
// every loop in it passes through a function that calls aether_stack_probe (the runtime guard, which fails
// the call before the stack runs out): removing the probing functions leaves it acyclic. Callees with no
// definition in the inputs (libc) and indirect calls have unknown stack: they are listed, and charged a fixed
// number of bytes (externalStack, 0 by default) in the depths.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";

export const PROBE_FUNCTION = "aether_stack_probe";
const INDIRECT = "__indirect_call";

export type Qualifier = "static" | "dynamic" | "dynamic,bounded" | "unknown";

export interface CallSite {
  /** id (title) of the callee, or "__indirect_call" */
  target: string;
  /** file:line:col of the call, "" when GCC gave none */
  site: string;
}

export interface FunctionNode {
  /** the .ci title: the name, or "unit:name" for internal linkage (unique across the program) */
  id: string;
  /** the C name as GCC labels it (clones keep their suffix: "f.isra", "f.part") */
  name: string;
  /** internal linkage (static) or a compiler-made clone */
  local: boolean;
  file: string;
  line: number;
  column: number;
  /** own frame in bytes (for "dynamic,bounded" a bound, for "dynamic" the fixed part only) */
  frame: number;
  qualifier: Qualifier;
  calls: CallSite[];
  /** false for a function only a .su file lists: its calls are unknown (its depth is its own frame) */
  callsKnown: boolean;
}

export interface CallGraph {
  functions: Map<string, FunctionNode>;
  /** titles called but defined in no input: name -> number of call sites */
  external: Map<string, number>;
  suFiles: string[];
  ciFiles: string[];
}

export interface Cycle {
  kind: "direct" | "mutual";
  /** ids of the functions in the strongly connected component, in source order */
  functions: string[];
  /** one loop through the component, first function repeated at the end */
  loop: string[];
  /** every loop passes through a function that calls aether_stack_probe */
  guarded: boolean;
}

export interface Depth {
  /** worst-case bytes through callees; null when unbounded (in or reaching a cycle) */
  bytes: number | null;
  /** the deepest chain (bounded), or the chain to a cycle followed by that cycle's loop (unbounded) */
  path: string[];
  /** index into cycles of the cycle this function is in or reaches first, else null */
  cycle: number | null;
  /** reaches an unguarded cycle */
  unguarded: boolean;
  /** worst own-or-callee dynamic stack: "dynamic" (alloca/VLA of unknown size), "dynamic,bounded", or null */
  dynamic: "dynamic" | "dynamic,bounded" | null;
  /** reaches a call of unknown stack: an external callee or an indirect call */
  unknownCallees: boolean;
}

export interface StackAnalysis {
  graph: CallGraph;
  cycles: Cycle[];
  depths: Map<string, Depth>;
  /** every indirect call: the calling function's id and the call site */
  indirect: { function: string; site: string }[];
  externalStack: number;
}

// --------------------------------------------------------------------------------------------- input ---

/** The .su and .ci files under the given files and folders (folders searched recursively). */
export function findStackFiles(paths: string[]): { su: string[]; ci: string[] } {
  const su: string[] = [];
  const ci: string[] = [];
  const visit = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) {
      for (const e of readdirSync(p).sort()) if (e !== "node_modules" && !e.startsWith(".git")) visit(join(p, e));
    } else if (p.endsWith(".su")) su.push(p);
    else if (p.endsWith(".ci")) ci.push(p);
  };
  for (const p of paths) visit(p);
  return { su, ci };
}

/** "file:line:col:name<TAB>bytes<TAB>qualifier" lines, keyed by "file:line:col:name". */
export function parseSu(text: string): Map<string, { bytes: number; qualifier: Qualifier }> {
  const out = new Map<string, { bytes: number; qualifier: Qualifier }>();
  for (const line of text.split("\n")) {
    const cols = line.split("\t");
    if (cols.length < 3) continue;
    // GCC writes a decimal byte count; anything else (a sign, a fraction, hex) is not a frame size.
    if (!/^\d{1,15}$/.test(cols[1]!.trim())) continue;
    const bytes = Number(cols[1]);
    out.set(cols[0]!, { bytes, qualifier: qualifierOf(cols[2]!.trim()) });
  }
  return out;
}

function qualifierOf(s: string): Qualifier {
  return s === "static" || s === "dynamic" || s === "dynamic,bounded" ? s : "unknown";
}

interface VcgNode {
  title: string;
  label: string;
  external: boolean;
}
interface VcgEdge {
  source: string;
  target: string;
  label: string;
}

const FIELD = /(\w+)\s*:\s*"((?:[^"\\]|\\.)*)"/g;
const unescape = (s: string) => s.replace(/\\(.)/g, (_m, c: string) => (c === "n" ? "\n" : c));

/** The nodes and edges of a GCC .ci (VCG) file. */
export function parseCi(text: string): { unit: string; nodes: VcgNode[]; edges: VcgEdge[] } {
  let unit = "";
  const nodes: VcgNode[] = [];
  const edges: VcgEdge[] = [];
  for (const line of text.split("\n")) {
    const t = line.trim();
    const fields: Record<string, string> = {};
    for (const m of t.matchAll(FIELD)) fields[m[1]!] = unescape(m[2]!);
    if (t.startsWith("graph:")) unit = fields.title ?? unit;
    else if (t.startsWith("node:") && fields.title !== undefined)
      nodes.push({ title: fields.title, label: fields.label ?? fields.title, external: /shape\s*:\s*ellipse/.test(t) });
    else if (t.startsWith("edge:") && fields.sourcename !== undefined && fields.targetname !== undefined)
      edges.push({ source: fields.sourcename, target: fields.targetname, label: fields.label ?? "" });
  }
  return { unit, nodes, edges };
}

/** "name\nfile:line:col\nN bytes (qualifier)" */
function parseLabel(label: string): { name: string; file: string; line: number; column: number; loc: string; bytes?: number; qualifier?: Qualifier } {
  const [name = "", loc = "", size = ""] = label.split("\n");
  const m = /^(.*):(\d+):(\d+)$/.exec(loc);
  const s = /(\d+) bytes \(([^)]*)\)/.exec(size);
  return {
    name,
    loc,
    file: m ? m[1]! : loc,
    line: m ? Number(m[2]) : 0,
    column: m ? Number(m[3]) : 0,
    bytes: s ? Number(s[1]) : undefined,
    qualifier: s ? qualifierOf(s[2]!) : undefined,
  };
}

/** Merge the .su and .ci files of a program into one call graph. */
export function loadCallGraph(suFiles: string[], ciFiles: string[]): CallGraph {
  const su = new Map<string, { bytes: number; qualifier: Qualifier }>();
  for (const f of suFiles) for (const [k, v] of parseSu(readFileSync(f, "utf8"))) su.set(k, v);
  const functions = new Map<string, FunctionNode>();
  const edges: VcgEdge[] = [];
  const described = new Set<string>(); // .su keys a .ci node stands for
  for (const f of ciFiles) {
    const ci = parseCi(readFileSync(f, "utf8"));
    for (const n of ci.nodes) {
      if (n.external || n.title === INDIRECT) continue;
      const l = parseLabel(n.label);
      const fromSu = su.get(`${l.loc}:${l.name}`);
      described.add(`${l.loc}:${l.name}`);
      const frame = fromSu?.bytes ?? l.bytes ?? 0;
      const qualifier = fromSu?.qualifier ?? l.qualifier ?? "unknown";
      const seen = functions.get(n.title);
      if (seen) {
        // The same function in two inputs (a unit compiled twice): keep the larger frame.
        if (frame > seen.frame) Object.assign(seen, { frame, qualifier });
        continue;
      }
      functions.set(n.title, {
        id: n.title,
        name: l.name,
        local: n.title.includes(":") || n.title.includes("."),
        file: l.file,
        line: l.line,
        column: l.column,
        frame,
        qualifier,
        calls: [],
        callsKnown: true,
      });
    }
    edges.push(...ci.edges);
  }
  // Functions a .su file lists but no .ci file describes (a unit compiled without -fcallgraph-info): their own
  // frame is known, their calls are not. Named plainly unless the name is taken, then "file:name".
  const orphans = [...su].filter(([k]) => !described.has(k));
  const names = new Map<string, number>();
  for (const [k] of orphans) {
    const name = k.slice(k.lastIndexOf(":") + 1);
    names.set(name, (names.get(name) ?? 0) + 1);
  }
  for (const [k, v] of orphans) {
    const m = /^(.*):(\d+):(\d+):([^:]+)$/.exec(k);
    if (!m) continue;
    const [, file, line, column, name] = m as unknown as [string, string, string, string, string];
    const id = names.get(name) === 1 && !functions.has(name) ? name : `${file}:${name}`;
    if (functions.has(id)) continue;
    functions.set(id, { id, name, local: id !== name || name.includes("."), file, line: Number(line), column: Number(column), frame: v.bytes, qualifier: v.qualifier, calls: [], callsKnown: false });
  }
  const external = new Map<string, number>();
  const seenEdge = new Set<string>();
  for (const e of edges) {
    const from = functions.get(e.source);
    if (!from) continue;
    const key = `${e.source}\0${e.target}\0${e.label}`;
    if (seenEdge.has(key)) continue;
    seenEdge.add(key);
    from.calls.push({ target: e.target, site: e.label });
    if (e.target !== INDIRECT && !functions.has(e.target)) external.set(e.target, (external.get(e.target) ?? 0) + 1);
  }
  return { functions, external, suFiles, ciFiles };
}

// ------------------------------------------------------------------------------------------ analysis ---

/** Strongly connected components of the graph restricted to ids, callees-first (Tarjan, iterative). */
export function stronglyConnected(ids: string[], succ: (id: string) => string[]): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  for (const root of ids) {
    if (index.has(root)) continue;
    const work: { id: string; succ: string[]; i: number }[] = [];
    const enter = (id: string) => {
      index.set(id, next);
      low.set(id, next);
      next++;
      stack.push(id);
      onStack.add(id);
      work.push({ id, succ: succ(id), i: 0 });
    };
    enter(root);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      if (top.i < top.succ.length) {
        const w = top.succ[top.i++]!;
        if (!index.has(w)) enter(w);
        else if (onStack.has(w)) low.set(top.id, Math.min(low.get(top.id)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!;
        low.set(parent.id, Math.min(low.get(parent.id)!, low.get(top.id)!));
      }
      if (low.get(top.id) === index.get(top.id)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== top.id);
        out.push(comp);
      }
    }
  }
  return out;
}

/** A loop through start inside the component (BFS over component edges back to start). */
function findLoop(start: string, inComp: Set<string>, succ: (id: string) => string[]): string[] {
  const prev = new Map<string, string>();
  const queue = [start];
  for (let q = 0; q < queue.length; q++) {
    const u = queue[q]!;
    for (const v of succ(u)) {
      if (!inComp.has(v)) continue;
      if (v === start) {
        const path = [start];
        for (let x = u; x !== start; x = prev.get(x)!) path.push(x);
        path.push(start);
        // path is start, u, ..., reversed except the first: rebuild in call order.
        const middle = path.slice(1, -1).reverse();
        return [start, ...middle, start];
      }
      if (!prev.has(v)) {
        prev.set(v, u);
        queue.push(v);
      }
    }
  }
  return [start, start];
}

/** A shortest call chain from one function to another inside a component (BFS), both ends included. */
function pathWithin(from: string, to: string, inComp: Set<string>, succ: (id: string) => string[]): string[] {
  const prev = new Map<string, string>([[from, from]]);
  const queue = [from];
  for (let q = 0; q < queue.length && !prev.has(to); q++) {
    for (const v of succ(queue[q]!)) {
      if (inComp.has(v) && !prev.has(v)) {
        prev.set(v, queue[q]!);
        queue.push(v);
      }
    }
  }
  if (!prev.has(to)) return [from, to];
  const path = [to];
  for (let x = to; x !== from; x = prev.get(x)!) path.push(prev.get(x)!);
  return path.reverse();
}

const rankDynamic = (d: Depth["dynamic"]) => (d === "dynamic" ? 2 : d === "dynamic,bounded" ? 1 : 0);

export function analyzeStack(graph: CallGraph, opts: { externalStack?: number } = {}): StackAnalysis {
  const externalStack = opts.externalStack ?? 0;
  const fns = graph.functions;
  const callees = new Map<string, string[]>();
  const probes = new Set<string>();
  const indirect: StackAnalysis["indirect"] = [];
  for (const f of fns.values()) {
    const defined = new Set<string>();
    for (const c of f.calls) {
      if (fns.has(c.target)) defined.add(c.target);
      if (c.target === PROBE_FUNCTION) probes.add(f.id);
      if (c.target === INDIRECT) indirect.push({ function: f.id, site: c.site });
    }
    callees.set(f.id, [...defined]);
  }
  const succ = (id: string) => callees.get(id) ?? [];
  const order = [...fns.values()].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.id.localeCompare(b.id));
  const ids = order.map((f) => f.id);
  const position = new Map(ids.map((id, i) => [id, i]));
  const components = stronglyConnected(ids, succ);

  const cycles: Cycle[] = [];
  const cycleOf = new Map<string, number>();
  for (const comp of components) {
    const cyclic = comp.length > 1 || succ(comp[0]!).includes(comp[0]!);
    if (!cyclic) continue;
    const members = [...comp].sort((a, b) => position.get(a)! - position.get(b)!);
    const inComp = new Set(members);
    // Guarded: without the functions that probe, no loop is left.
    const unprobed = members.filter((id) => !probes.has(id));
    const unprobedSet = new Set(unprobed);
    const rest = stronglyConnected(unprobed, (id) => succ(id).filter((v) => unprobedSet.has(v)));
    const guarded = !rest.some((c) => c.length > 1 || succ(c[0]!).includes(c[0]!));
    const idx = cycles.length;
    cycles.push({ kind: members.length > 1 ? "mutual" : "direct", functions: members, loop: findLoop(members[0]!, inComp, succ), guarded });
    for (const id of members) cycleOf.set(id, idx);
  }

  const depths = new Map<string, Depth>();
  for (const comp of components) {
    const cyc = cycleOf.get(comp[0]!);
    // What the component's callees outside it contribute.
    let unguarded = cyc !== undefined && !cycles[cyc]!.guarded;
    let dynamic: Depth["dynamic"] = null;
    let unknown = false;
    let reachedCycle: number | null = cyc ?? null;
    let unboundedVia: string | null = null;
    const inComp = new Set(comp);
    for (const id of comp) {
      const f = fns.get(id)!;
      if (f.qualifier === "dynamic" || f.qualifier === "dynamic,bounded") {
        if (rankDynamic(f.qualifier) > rankDynamic(dynamic)) dynamic = f.qualifier;
      }
      if (!f.callsKnown || f.calls.some((c) => c.target === INDIRECT || !fns.has(c.target))) unknown = true;
      for (const c of succ(id)) {
        if (inComp.has(c)) continue;
        const d = depths.get(c)!;
        if (rankDynamic(d.dynamic) > rankDynamic(dynamic)) dynamic = d.dynamic;
        if (d.unknownCallees) unknown = true;
        if (d.unguarded) unguarded = true;
        if (d.bytes === null && cyc === undefined) {
          // Report an unguarded cycle when both kinds are reachable.
          if (unboundedVia === null || (d.unguarded && !depths.get(unboundedVia)!.unguarded)) {
            unboundedVia = c;
            reachedCycle = d.cycle;
          }
        }
      }
    }
    if (cyc !== undefined) {
      const loop = cycles[cyc]!.loop;
      for (const id of comp) {
        const at = loop.indexOf(id);
        const path = at >= 0 ? [...loop.slice(at, -1), ...loop.slice(0, at + 1)] : [...pathWithin(id, loop[0]!, inComp, succ), ...loop.slice(1)];
        depths.set(id, { bytes: null, path, cycle: cyc, unguarded, dynamic, unknownCallees: unknown });
      }
      continue;
    }
    const id = comp[0]!;
    const f = fns.get(id)!;
    if (unboundedVia !== null) {
      depths.set(id, { bytes: null, path: [id, ...depths.get(unboundedVia)!.path], cycle: reachedCycle, unguarded, dynamic, unknownCallees: unknown });
      continue;
    }
    let best: string | null = null;
    let bestBytes = !f.callsKnown || f.calls.some((c) => c.target === INDIRECT || !fns.has(c.target)) ? externalStack : 0;
    for (const c of succ(id)) {
      const b = depths.get(c)!.bytes!;
      if (b > bestBytes || (b === bestBytes && best === null && b > 0)) {
        best = c;
        bestBytes = b;
      }
    }
    depths.set(id, {
      bytes: f.frame + bestBytes,
      path: best ? [id, ...depths.get(best)!.path] : [id],
      cycle: null,
      unguarded: false,
      dynamic,
      unknownCallees: unknown,
    });
  }
  return { graph, cycles, depths, indirect, externalStack };
}

// ---------------------------------------------------------------------------------------------- gate ---

export interface Violation {
  function: string;
  reason: "recursion" | "dynamic" | "exceeds";
  detail: string;
}

/** Display name: the C name, with its unit for a function of internal linkage. */
export function displayName(graph: CallGraph, id: string): string {
  const f = graph.functions.get(id);
  if (!f) return id;
  return f.local ? `${f.name} (${basename(f.file)})` : f.name;
}

/** Functions the gate covers: those named in exports (when given), else every function of external linkage. */
export function gatedFunctions(a: StackAnalysis, exports?: Set<string>): string[] {
  return [...a.graph.functions.values()].filter((f) => (exports ? !f.local && exports.has(f.name) : !f.local)).map((f) => f.id);
}

/** Why each gated function may overflow maxStack bytes: unguarded recursion, dynamic stack of unknown size, or a
 * worst-case depth above the limit. A guarded recursion passes: the probe fails it before the stack runs out. */
export function checkGate(a: StackAnalysis, ids: string[], maxStack: number): Violation[] {
  const out: Violation[] = [];
  const name = (id: string) => displayName(a.graph, id);
  for (const id of ids) {
    const d = a.depths.get(id)!;
    if (d.bytes === null && d.unguarded) {
      out.push({ function: id, reason: "recursion", detail: `unbounded: ${d.path.map(name).join(" -> ")}` });
    } else if (d.dynamic === "dynamic") {
      out.push({ function: id, reason: "dynamic", detail: "reaches alloca or a VLA of unknown size" });
    } else if (d.bytes !== null && d.bytes > maxStack) {
      out.push({ function: id, reason: "exceeds", detail: `${d.bytes} bytes > ${maxStack}: ${d.path.map(name).join(" -> ")}` });
    }
  }
  return out;
}
