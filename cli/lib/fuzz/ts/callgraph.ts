// callgraph.ts: the oracle for `aether stack`'s analysis (cli/lib/callgraph.ts), shared by the builtin engine
// and the Jazzer.js target. An input is decoded into a call graph of up to 10 functions (frames, dynamic
// qualifiers, calls to each other, to an external function, through pointers, to aether_stack_probe); the
// graph is written out as GCC's .su and .ci text (names with quotes and backslashes escaped as GCC does),
// read back with parseSu / parseCi, and analysed with analyzeStack. Checked against brute force:
// - the parsers give back exactly the functions, frames, qualifiers and calls that were written;
// - every function on a cycle, and only those, is in one reported cycle whose members are its strongly
//   connected component; the loop is a real loop; "guarded" holds exactly when the component without its
//   probing functions is acyclic; direct/mutual is right;
// - a function's depth is unbounded exactly when it reaches a cycle, else the heaviest chain of frames (plus
//   the charge for unknown callees), and its path is a real call chain whose frames add up to that depth;
//   "unguarded", "dynamic" and "unknownCallees" are what the reachable functions say;
// - arbitrary text (the rest of the input) never makes the parsers throw.
import { analyzeStack, parseCi, parseSu, PROBE_FUNCTION, type CallGraph, type FunctionNode, type Qualifier } from "../../callgraph.ts";

export class CallgraphFailure extends Error {
  override name = "FuzzFailure";
}
function check(cond: unknown, msg: string | (() => string)): asserts cond {
  if (!cond) throw new CallgraphFailure(typeof msg === "string" ? msg : msg());
}

const QUALIFIERS: Qualifier[] = ["static", "dynamic", "dynamic,bounded", "static"];
const NAMES = ["main", "f", "g\"q", "h\\b", "isra.0", "x y", "part.1", "k"];
const INDIRECT = "__indirect_call";

interface Fn {
  id: string;
  name: string;
  frame: number;
  qualifier: Qualifier;
  known: boolean;
  calls: string[];
}

/** Bytes -> graph (each byte read is used; missing bytes read as 0, like the C producer). */
function decode(d: Uint8Array): { fns: Fn[]; externalStack: number; rest: string } {
  let pos = 0;
  const u8 = () => (pos < d.length ? d[pos++]! : (pos++, 0));
  const n = 1 + (u8() % 10);
  const externalStack = (u8() % 3) * 64;
  const fns: Fn[] = [];
  for (let i = 0; i < n; i++) {
    const frame = (u8() | (u8() << 8)) % 5000;
    const flags = u8();
    fns.push({ id: `${NAMES[i % NAMES.length]}${i}`, name: `${NAMES[i % NAMES.length]}${i}`, frame, qualifier: QUALIFIERS[flags & 3]!, known: (flags & 0x1c) !== 0, calls: [] });
    if (flags & 0x20) fns[i]!.calls.push(PROBE_FUNCTION);
  }
  for (const f of fns) {
    const m = u8() % (2 * n + 1);
    for (let k = 0; k < m; k++) {
      const t = u8() % (n + 2);
      f.calls.push(t < n ? fns[t]!.id : t === n ? "memcpy" : INDIRECT);
    }
    if (!f.known) f.calls = [];
  }
  return { fns, externalStack, rest: new TextDecoder().decode(d.subarray(Math.min(pos, d.length))) };
}

const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"');

/** GCC's .su and .ci texts for the graph (functions whose calls are unknown are in the .su file only). */
function render(fns: Fn[]): { su: string; ci: string } {
  const su = fns.map((f, i) => `a.c:${i + 1}:1:${f.name}\t${f.frame}\t${f.qualifier}`).join("\n");
  const ci: string[] = ['graph: { title: "a.c"'];
  fns.forEach((f, i) => {
    if (!f.known) return;
    ci.push(`node: { title: "${esc(f.id)}" label: "${esc(f.name)}\\na.c:${i + 1}:1\\n${f.frame} bytes (${f.qualifier})" }`);
  });
  const external = new Set<string>();
  fns.forEach((f, i) =>
    f.calls.forEach((c, k) => {
      if (!fns.some((g) => g.id === c) && !external.has(c)) {
        external.add(c);
        ci.push(`node: { title: "${esc(c)}" label: "${esc(c)}" shape : ellipse }`);
      }
      ci.push(`edge: { sourcename: "${esc(f.id)}" targetname: "${esc(c)}" label: "a.c:${i + 1}:${k + 2}" }`);
    }),
  );
  ci.push("}");
  return { su, ci: ci.join("\n") };
}

export function checkCallgraph(data: Uint8Array): string {
  const { fns, externalStack, rest } = decode(data);
  // Arbitrary text: the parsers never throw.
  parseSu(rest);
  parseCi(rest);

  // The rendered texts read back exactly.
  const { su, ci } = render(fns);
  const suMap = parseSu(su);
  fns.forEach((f, i) => {
    const e = suMap.get(`a.c:${i + 1}:1:${f.name}`);
    check(e && e.bytes === f.frame && e.qualifier === f.qualifier, () => `parseSu lost ${f.name}: ${JSON.stringify(e)}`);
  });
  const parsed = parseCi(ci);
  const known = fns.filter((f) => f.known);
  check(parsed.unit === "a.c", `parseCi: unit ${JSON.stringify(parsed.unit)}`);
  for (const f of known) check(parsed.nodes.some((x) => x.title === f.id && !x.external && x.label.startsWith(`${f.name}\n`)), () => `parseCi lost node ${JSON.stringify(f.id)}`);
  const edgeCount = known.reduce((a, f) => a + f.calls.length, 0);
  check(parsed.edges.length === edgeCount, () => `parseCi read ${parsed.edges.length} edges, ${edgeCount} were written`);
  for (const f of known) for (const c of f.calls) check(parsed.edges.some((e) => e.source === f.id && e.target === c), () => `parseCi lost the call ${f.id} -> ${c}`);

  // The analysis, on the graph as loadCallGraph would build it.
  const functions = new Map<string, FunctionNode>();
  fns.forEach((f, i) =>
    functions.set(f.id, { id: f.id, name: f.name, local: false, file: "a.c", line: i + 1, column: 1, frame: f.frame, qualifier: f.qualifier, calls: f.calls.map((c, k) => ({ target: c, site: `a.c:${i + 1}:${k + 2}` })), callsKnown: f.known }),
  );
  const graph: CallGraph = { functions, external: new Map(), suFiles: [], ciFiles: [] };
  const a = analyzeStack(graph, { externalStack });

  const ids = fns.map((f) => f.id);
  const succ = new Map(fns.map((f) => [f.id, [...new Set(f.calls.filter((c) => functions.has(c)))]]));
  const reach = new Map<string, Set<string>>();
  for (const id of ids) {
    const seen = new Set<string>();
    const stack = [...succ.get(id)!];
    while (stack.length) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      stack.push(...succ.get(v)!);
    }
    reach.set(id, seen);
  }
  const onCycle = (id: string) => reach.get(id)!.has(id);
  const scc = (id: string) => ids.filter((v) => v === id || (reach.get(id)!.has(v) && reach.get(v)!.has(id)));
  const probing = (id: string) => fns.find((f) => f.id === id)!.calls.includes(PROBE_FUNCTION);
  const acyclic = (nodes: string[]) => {
    const inSet = new Set(nodes);
    const state = new Map<string, number>();
    const visit = (u: string): boolean => {
      state.set(u, 1);
      for (const v of succ.get(u)!) {
        if (!inSet.has(v)) continue;
        if (state.get(v) === 1) return false;
        if (!state.has(v) && !visit(v)) return false;
      }
      state.set(u, 2);
      return true;
    };
    return nodes.every((u) => state.has(u) || visit(u));
  };
  const guardedOf = (id: string) => acyclic(scc(id).filter((v) => !probing(v)));

  // Cycles.
  for (const id of ids) {
    const inCycles = a.cycles.filter((c) => c.functions.includes(id));
    check(inCycles.length === (onCycle(id) ? 1 : 0), () => `${id}: in ${inCycles.length} reported cycles, on a cycle: ${onCycle(id)}`);
    if (!onCycle(id)) continue;
    const c = inCycles[0]!;
    check(JSON.stringify([...c.functions].sort()) === JSON.stringify(scc(id).sort()), () => `${id}: cycle members ${c.functions} are not its component ${scc(id)}`);
    check(c.kind === (c.functions.length > 1 ? "mutual" : "direct"), `${id}: a ${c.functions.length}-function cycle called ${c.kind}`);
    check(c.guarded === guardedOf(id), () => `${id}: guarded ${c.guarded}, brute force ${guardedOf(id)}`);
    check(c.loop.length >= 2 && c.loop[0] === c.loop[c.loop.length - 1], () => `${id}: loop ${c.loop} does not close`);
    for (let k = 0; k + 1 < c.loop.length; k++) check(succ.get(c.loop[k]!)!.includes(c.loop[k + 1]!), () => `loop ${c.loop}: ${c.loop[k]} does not call ${c.loop[k + 1]}`);
  }

  // Depths.
  const fn = (id: string) => fns.find((f) => f.id === id)!;
  const extra = (id: string) => {
    const f = fn(id);
    // aether_stack_probe is defined in no input either: like any external callee, it is charged.
    return !f.known || f.calls.some((c) => c === INDIRECT || !functions.has(c)) ? externalStack : 0;
  };
  const memo = new Map<string, number>();
  const depth = (id: string): number => {
    if (memo.has(id)) return memo.get(id)!;
    let best = extra(id);
    for (const v of succ.get(id)!) best = Math.max(best, depth(v));
    memo.set(id, fn(id).frame + best);
    return memo.get(id)!;
  };
  const rank = (q: string | null) => (q === "dynamic" ? 2 : q === "dynamic,bounded" ? 1 : 0);
  for (const id of ids) {
    const d = a.depths.get(id)!;
    const all = [id, ...reach.get(id)!];
    const unbounded = all.some(onCycle);
    check((d.bytes === null) === unbounded, () => `${id}: bytes ${d.bytes}, reaches a cycle: ${unbounded}`);
    check(d.path[0] === id, () => `${id}: its path starts at ${d.path[0]}`);
    for (let k = 0; k + 1 < d.path.length; k++) check(succ.get(d.path[k]!)!.includes(d.path[k + 1]!), () => `${id}: path ${d.path}: ${d.path[k]} does not call ${d.path[k + 1]}`);
    if (!unbounded) {
      check(d.bytes === depth(id), () => `${id}: depth ${d.bytes}, brute force ${depth(id)}`);
      const sum = d.path.reduce((s, v) => s + fn(v).frame, 0) + extra(d.path[d.path.length - 1]!);
      check(sum === d.bytes, () => `${id}: path ${d.path} adds up to ${sum}, not ${d.bytes}`);
      check(d.cycle === null && !d.unguarded, `${id}: bounded, but cycle ${d.cycle} / unguarded ${d.unguarded}`);
    } else {
      const last = d.path[d.path.length - 1]!;
      check(onCycle(last) && d.path.indexOf(last) < d.path.length - 1, () => `${id}: path ${d.path} does not end with a loop`);
      check(d.cycle !== null && a.cycles[d.cycle]!.functions.some((v) => all.includes(v)), () => `${id}: cycle ${d.cycle} is not one it reaches`);
      const unguarded = all.some((v) => onCycle(v) && !guardedOf(v));
      check(d.unguarded === unguarded, () => `${id}: unguarded ${d.unguarded}, brute force ${unguarded}`);
    }
    const dyn = all.reduce((m, v) => Math.max(m, rank(fn(v).qualifier)), 0);
    check(rank(d.dynamic) === dyn, () => `${id}: dynamic ${d.dynamic}, brute force rank ${dyn}`);
    const unknown = all.some((v) => !fn(v).known || fn(v).calls.some((c) => c === INDIRECT || !functions.has(c)));
    check(d.unknownCallees === unknown, () => `${id}: unknownCallees ${d.unknownCallees}, brute force ${unknown}`);
  }
  return `${fns.length} functions, ${a.cycles.length} cycle(s), deepest ${Math.max(...[...a.depths.values()].map((d) => d.bytes ?? -1))} bytes`;
}
