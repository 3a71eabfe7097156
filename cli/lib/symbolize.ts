// symbolize.ts: turn the raw frames of a run report (address, module, load base) into function and file:line
// with binutils' addr2line, one process per module; frames it cannot resolve keep dladdr's symbol name.
import { openSync, readSync, closeSync } from "node:fs";
import { which } from "./tools.ts";

export interface RawFrame {
  addr: string;
  module?: string;
  base?: string;
  symbol?: string;
  symbolOffset?: number;
}

export interface Frame {
  addr: string;
  module?: string;
  function?: string;
  location?: string; // file:line
}

/** ET_EXEC (non-PIE) binaries want absolute addresses; everything else, offsets from the load base. */
function isFixedAddress(module: string): boolean {
  try {
    const fd = openSync(module, "r");
    const hdr = Buffer.alloc(18);
    readSync(fd, hdr, 0, 18, 0);
    closeSync(fd);
    return hdr.readUInt32BE(0) === 0x7f454c46 && hdr.readUInt16LE(16) === 2;
  } catch {
    return false;
  }
}

export function symbolize(stacks: RawFrame[][]): Frame[][] {
  const addr2line = which("addr2line");
  const byModule = new Map<string, { key: string; frame: RawFrame }[]>();
  const resolved = new Map<string, { fn?: string; loc?: string }>();
  for (const stack of stacks)
    for (const f of stack) {
      if (!f.module || !f.base) continue;
      const key = `${f.module}@${f.addr}`;
      if (resolved.has(key)) continue;
      resolved.set(key, {});
      const list = byModule.get(f.module) ?? [];
      list.push({ key, frame: f });
      byModule.set(f.module, list);
    }
  if (addr2line) {
    for (const [module, frames] of byModule) {
      const fixed = isFixedAddress(module);
      // A return address points after the call: look up the call instruction itself (address - 1).
      const offsets = frames.map(({ frame }) => {
        const a = BigInt(frame.addr) - 1n;
        return `0x${(fixed ? a : a - BigInt(frame.base!)).toString(16)}`;
      });
      const r = Bun.spawnSync({ cmd: [addr2line, "-f", "-C", "-e", module, ...offsets], stdout: "pipe", stderr: "ignore" });
      if (r.exitCode !== 0) continue;
      const lines = r.stdout.toString().split("\n");
      frames.forEach(({ key }, i) => {
        const fn = lines[2 * i];
        const loc = lines[2 * i + 1];
        resolved.set(key, {
          fn: fn && fn !== "??" ? fn : undefined,
          loc: loc && !loc.startsWith("??") ? loc.replace(/ \(discriminator \d+\)$/, "") : undefined,
        });
      });
    }
  }
  return stacks.map((stack) =>
    stack
      .filter((f) => !f.module || !/libaether(-preload)?\.so$/.test(f.module))
      .map((f) => {
        const r = f.module ? resolved.get(`${f.module}@${f.addr}`) : undefined;
        return {
          addr: f.addr,
          module: f.module,
          function: r?.fn ?? (f.symbol ? `${f.symbol}+${f.symbolOffset ?? 0}` : undefined),
          location: r?.loc,
        };
      }),
  );
}

export function formatFrame(f: Frame, i: number): string {
  // Code outside any file is JIT output (Bun's FFI trampolines, JavaScript) or other generated code.
  const where = f.location ?? f.module ?? "(no file: JIT or generated code)";
  return `#${i} ${f.function ?? f.addr} ${where}`;
}
