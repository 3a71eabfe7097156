// worker.ts: the child process of the builtin engine. Runs programs of one builtin target and says what
// happened as JSON lines on stdout; before each input it writes the input to a marker file, so that when the
// process dies (a crash in native code) the parent knows which input did it.
//   fuzz <target> <seed> <seconds> <runs> <maxLen> <marker> [corpus dirs...]
//   first <target> <marker> <files...>      run the files in order; report the first that fails
//   repro <target> <file> [-v]              run one input with the step-by-step account
import { writeErr, writeOut } from "../../output.ts";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FuzzFailure } from "../producer.ts";
import { BUILTIN_TARGETS } from "./index.ts";
import type { BuiltinTarget } from "./types.ts";

function say(obj: Record<string, unknown>): void {
  writeOut(`${JSON.stringify(obj)}\n`);
}

function message(e: unknown): string {
  if (e instanceof FuzzFailure) return `FUZZ ASSERTION FAILED: ${e.message}`;
  const err = e as Error;
  return `uncaught ${err?.name ?? "exception"}: ${err?.message ?? String(e)}`;
}

/** mulberry32 */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function readCorpus(dirs: string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const d of dirs) {
    let names: string[] = [];
    try {
      names = readdirSync(d).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const f = join(d, n);
      if (n.startsWith(".") || !statSync(f).isFile()) continue;
      out.push(new Uint8Array(readFileSync(f)));
    }
  }
  return out;
}

/** A new input: fresh random bytes, or a corpus input mutated (bytes flipped, inserted, removed, spliced). */
function nextInput(rand: () => number, corpus: Uint8Array[], maxLen: number): Uint8Array {
  const int = (n: number) => Math.floor(rand() * n);
  if (corpus.length === 0 || rand() < 0.3) {
    const n = 1 + int(Math.max(1, maxLen));
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  }
  let b = Array.from(corpus[int(corpus.length)]!);
  const edits = 1 + int(8);
  for (let k = 0; k < edits; k++) {
    switch (int(5)) {
      case 0: if (b.length) b[int(b.length)] = int(256); break;
      case 1: if (b.length) { const i = int(b.length); b[i] = b[i]! ^ (1 << int(8)); } break;
      case 2: b.splice(int(b.length + 1), 0, ...Array.from({ length: 1 + int(8) }, () => int(256))); break;
      case 3: if (b.length > 1) b.splice(int(b.length), 1 + int(4)); break;
      default: {
        const other = corpus[int(corpus.length)]!;
        const from = int(other.length + 1);
        b.splice(int(b.length + 1), 0, ...other.subarray(from, from + 1 + int(32)));
      }
    }
  }
  if (b.length > maxLen) b = b.slice(0, maxLen);
  return Uint8Array.from(b);
}

function find(name: string): BuiltinTarget {
  const t = BUILTIN_TARGETS.find((x) => x.name === name);
  if (!t) {
    say({ t: "error", message: `no builtin target '${name}'` });
    process.exit(2);
  }
  return t;
}

function main(argv: string[]): number {
  const [mode, name] = argv;
  const target = find(name!);
  if (mode === "repro") {
    const data = new Uint8Array(readFileSync(argv[2]!));
    const verbose = argv[3] === "-v";
    const prog = target.decode(data);
    try {
      target.run(prog, verbose ? (l) => writeOut(`${l}\n`) : undefined);
    } catch (e) {
      writeErr(`${message(e)}\n`);
      return 1;
    }
    return 0;
  }
  if (mode === "first") {
    const marker = argv[2]!;
    const files = argv.slice(3);
    for (let i = 0; i < files.length; i++) {
      writeFileSync(marker, String(i));
      try {
        target.run(target.decode(new Uint8Array(readFileSync(files[i]!))));
      } catch (e) {
        say({ t: "first", index: i, message: message(e) });
        return 0;
      }
    }
    say({ t: "none" });
    return 0;
  }
  // fuzz
  const seed = Number(argv[2]);
  const seconds = Number(argv[3]);
  const runs = Number(argv[4]);
  const maxLen = Number(argv[5]);
  const marker = argv[6]!;
  const corpus = readCorpus(argv.slice(7));
  const rand = rng(seed);
  const t0 = performance.now();
  let execs = 0;
  let lastReport = t0;
  // The committed corpus runs first, as libFuzzer's does.
  const queue = [...corpus];
  for (;;) {
    const now = performance.now();
    if ((runs > 0 && execs >= runs) || (seconds > 0 && now - t0 >= seconds * 1000)) break;
    const input = queue.length ? queue.shift()! : nextInput(rand, corpus, maxLen);
    writeFileSync(marker, input);
    try {
      target.run(target.decode(input));
    } catch (e) {
      if ((e as Error)?.name === "LibraryError") {
        // libaether is missing or stale: nothing the input did, so no finding to save.
        say({ t: "error", message: (e as Error).message });
        return 2;
      }
      say({ t: "fail", execs, message: message(e), input: Buffer.from(input).toString("hex") });
      return 1;
    }
    execs++;
    if (now - lastReport > 1000) {
      lastReport = now;
      say({ t: "progress", execs, seconds: (now - t0) / 1000 });
    }
  }
  say({ t: "done", execs, seconds: (performance.now() - t0) / 1000 });
  return 0;
}

process.exitCode = main(process.argv.slice(2));
