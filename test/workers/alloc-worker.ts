// A Bun Worker that hammers the safe allocator through its own dlopen of libaether.
// Messages in: {op: "alloc", count, id} -> replies {ptrs: [[ptr, size, seed], ...]}
//              {op: "verify-free", blocks}  -> replies {bad}
//              {op: "stats"} -> replies the allocator's error count
import { memory } from "../../cli/native/memory.ts";

declare const self: Worker;
memory.init();

function fill(p: number, size: number, seed: number) {
  const v = memory.view(p as never, size);
  for (let i = 0; i < size; i++) v[i] = (seed + i * 13) & 0xff;
}
function intact(p: number, size: number, seed: number) {
  const v = memory.view(p as never, size);
  for (let i = 0; i < size; i++) if (v[i] !== ((seed + i * 13) & 0xff)) return false;
  return true;
}

self.onmessage = (e: MessageEvent) => {
  const m = e.data;
  if (m.op === "alloc") {
    const out: [number, number, number][] = [];
    let keep: [number, number, number][] = [];
    for (let i = 0; i < m.count; i++) {
      const size = 1 + ((i * 7919 + m.id * 104729) % 2048);
      const p = memory.safeMalloc(size) as unknown as number;
      const seed = (m.id * 31 + i) & 0xff;
      fill(p, size, seed);
      // half go to another thread, half are freed here after a realloc round trip
      if (i % 2) out.push([p, size, seed]);
      else keep.push([p, size, seed]);
      if (keep.length > 32) {
        for (const [q, n, s] of keep) {
          if (!intact(q, n, s)) throw new Error("own block damaged");
          const r = memory.safeRealloc(q as never, n + 100) as unknown as number;
          if (!intact(r, n, s)) throw new Error("realloc lost data");
          memory.safeFree(r as never);
        }
        keep = [];
      }
    }
    for (const [q] of keep) memory.safeFree(q as never);
    self.postMessage({ ptrs: out });
  } else if (m.op === "verify-free") {
    let bad = 0;
    for (const [p, size, seed] of m.blocks as [number, number, number][]) {
      if (!intact(p, size, seed)) bad++;
      memory.safeFree(p as never);
    }
    self.postMessage({ bad });
  }
};
