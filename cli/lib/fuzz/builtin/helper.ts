// helper.ts: the other threads of a builtin target. The C targets start pthreads (queue.c's burst producers,
// pool.c's freeing thread); Bun's engine runs a program synchronously on one thread, so these are Bun Workers
// (real OS threads, each loading libaether through the typed wrappers) driven without the event loop: a
// command goes into a SharedArrayBuffer and the caller blocks in Atomics.wait until the helper says it is
// done, or, for a burst, goes on popping while the helper pushes. A helper is started on first use and kept
// for the life of the process (unref'd, so it never keeps the process alive).
import { loadedLibrary } from "../../../native/ffi.ts";

/** The helper's commands (helper-worker.ts carries them out). */
export const CMD = { poolFree: 1, poolFlush: 2, burst: 3 } as const;

// Int32 slots of the control block; then 8 float64 argument slots; then an error message.
export const SLOT = { ready: 0, cmd: 1, result: 2, stop: 3, done: 4, errLen: 5, spin: 6 } as const;
export const ARGS_AT = 32; // byte offset of the float64 arguments (after 8 int32 slots)
export const ARGS = 8;
export const ERR_AT = ARGS_AT + 8 * ARGS;
export const ERR_BYTES = 512;
/** RESULT when the helper's command threw: the message is in the error area. */
export const RESULT_THREW = -0x7fff;

const START_MS = 20_000;

export class HelperThread {
  readonly #ctl: Int32Array;
  readonly #args: Float64Array;
  readonly #err: Uint8Array;
  #busy = false;

  private constructor(readonly index: number) {
    const sab = new SharedArrayBuffer(ERR_AT + ERR_BYTES);
    this.#ctl = new Int32Array(sab, 0, 8);
    this.#args = new Float64Array(sab, ARGS_AT, ARGS);
    this.#err = new Uint8Array(sab, ERR_AT, ERR_BYTES);
    const w = new Worker(new URL("./helper-worker.ts", import.meta.url).href);
    w.unref();
    // The worker loads the library this process loaded (same file: one copy of libaether's state).
    w.postMessage({ control: sab, lib: loadedLibrary().path });
    if (Atomics.wait(this.#ctl, SLOT.ready, 0, START_MS) === "timed-out" && Atomics.load(this.#ctl, SLOT.ready) === 0)
      throw new Error(`helper thread ${index} did not start within ${START_MS / 1000} s`);
  }

  static #all: HelperThread[] = [];

  /** Helper thread i (0, 1, ...), started on first use. */
  static get(i: number): HelperThread {
    return (HelperThread.#all[i] ??= new HelperThread(i));
  }

  /** Post a command and return at once (join() waits for its result). */
  start(cmd: number, args: number[]): void {
    if (this.#busy) throw new Error(`helper thread ${this.index} is still running a command`);
    this.#busy = true;
    args.forEach((a, k) => (this.#args[k] = a));
    Atomics.store(this.#ctl, SLOT.stop, 0);
    Atomics.store(this.#ctl, SLOT.done, 0);
    Atomics.store(this.#ctl, SLOT.cmd, cmd);
    Atomics.notify(this.#ctl, SLOT.cmd);
  }

  /** Ask a running command to stop (a burst producer stops at its next full queue). */
  stop(): void {
    Atomics.store(this.#ctl, SLOT.stop, 1);
  }

  /** Wait for the command's result. A command that threw in the helper throws here with its message. */
  join(): number {
    while (Atomics.load(this.#ctl, SLOT.done) === 0) Atomics.wait(this.#ctl, SLOT.done, 0, 1000);
    this.#busy = false;
    const r = Atomics.load(this.#ctl, SLOT.result);
    if (r === RESULT_THREW) {
      const msg = new TextDecoder().decode(this.#err.slice(0, Atomics.load(this.#ctl, SLOT.errLen)));
      throw new Error(`helper thread ${this.index}: ${msg}`);
    }
    return r;
  }

  /** Whether the command posted last has finished (its result is ready for join()). */
  get finished(): boolean {
    return Atomics.load(this.#ctl, SLOT.done) === 1;
  }

  get running(): boolean {
    return this.#busy;
  }

  /** start + join: run the command on the helper thread while this one waits (pool.c's on_helper). */
  call(cmd: number, args: number[]): number {
    this.start(cmd, args);
    return this.join();
  }
}
