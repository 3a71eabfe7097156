// selftest.ts (builtin): a target with known bugs, listed only when AETHER_FUZZ_SELFTEST=1, so the test suite
// can check that the engine finds a failing program, catches a crash in a child process, and shrinks both.
// Its program: each byte is an operation; the oracle fails on the byte 0xF0 followed later by 0x0F, and the
// process aborts outright (as a native crash would) on the byte 0xAA followed later by 0xAB.
import { fuzzAssert } from "../producer.ts";
import type { BuiltinTarget } from "./types.ts";

export const selftestTarget: BuiltinTarget<number> = {
  name: "selftest",
  description: "the builtin engine's own test: a planted assertion failure and a planted crash",
  maxLen: 64,
  decode: (data) => ({ head: new Uint8Array(0), ops: Array.from(data) }),
  encode: (p) => Uint8Array.from(p.ops),
  simplify: (op) => (op > 0 ? [0] : []),
  describe: (op) => `byte 0x${op.toString(16)}`,
  run(p, log) {
    let armed = false;
    let primed = false;
    p.ops.forEach((op, i) => {
      log?.(`op ${i}: byte 0x${op.toString(16)}`);
      if (primed && op === 0xab) process.abort();
      if (op === 0xaa) primed = true;
      if (op === 0xf0) armed = true;
      fuzzAssert(!(armed && op === 0x0f), `0x0f after 0xf0 at op ${i}`);
    });
  },
};
