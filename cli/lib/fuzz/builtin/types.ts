// types.ts: the contract of a builtin fuzz target: the Bun-side engine for machines without clang. A target
// decodes an input (the same bytes its C twin in fuzz/ reads, where it has one) into a program of operations,
// runs it through the FFI (or the CLI's own TypeScript code) against a model, and throws FuzzFailure when the
// model and the code disagree. The engine generates inputs, runs them in a child process (so a crash is
// caught), and shrinks a failing program by removing and simplifying operations.

export interface Program<Op = unknown> {
  /** what the input says before its operations (state shape, seeds), re-encoded as is */
  head: Uint8Array;
  ops: Op[];
}

export interface BuiltinTarget<Op = unknown> {
  name: string;
  /** one line: what the target checks */
  description: string;
  /** largest input worth generating */
  maxLen: number;
  decode(data: Uint8Array): Program<Op>;
  encode(p: Program<Op>): Uint8Array;
  /** simpler versions of one operation (smaller sizes, fewer bytes), tried while shrinking */
  simplify?(op: Op): Op[];
  /** one line for --repro's account of an operation */
  describe(op: Op): string;
  /** run the program; log receives the step-by-step account when asked for. Throws FuzzFailure. */
  run(p: Program<Op>, log?: (line: string) => void): void;
}

/** What a whole-input target (the input is one operation: its bytes) changes from the default. */
export interface BytesTargetSpec {
  name: string;
  description: string;
  maxLen: number;
  /** checks the input; throws an error named "FuzzFailure" on a disagreement; returns the account line */
  check(data: Uint8Array): string;
  simplify?(data: Uint8Array): Uint8Array[];
  describe?(data: Uint8Array): string;
}
