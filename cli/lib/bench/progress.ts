// progress.ts: one status line on a terminal (which suite, which case, estimated time left), redrawn in place
// on stderr; nothing at all when stderr is not a terminal, so a pipe or a CI log gets only the result.
import type { Suite } from "./types.ts";

export interface ProgressSink {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

export class Progress {
  readonly enabled: boolean;
  #out: ProgressSink;
  #suites: { name: string; estimate: number; steps: number }[];
  #total: number;
  #t0 = performance.now();
  #index = -1;
  #done = 0;
  #label = "";
  #lastDraw = 0;
  #spin = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(suites: Suite[], quick: boolean, out: ProgressSink = process.stderr, enabled = out.isTTY === true) {
    this.#out = out;
    this.enabled = enabled;
    this.#suites = suites.map((s) => ({ name: s.name, estimate: Math.max(0.1, s.estimate(quick)), steps: Math.max(1, s.steps(quick)) }));
    this.#total = this.#suites.reduce((a, s) => a + s.estimate, 0);
  }

  /** The fraction of the whole run done, from the suites' estimates and steps. */
  fraction(): number {
    if (this.#index < 0) return 0;
    const before = this.#suites.slice(0, this.#index).reduce((a, s) => a + s.estimate, 0);
    const cur = this.#suites[this.#index];
    const within = cur ? cur.estimate * Math.min(1, this.#done / cur.steps) : 0;
    return Math.min(1, (before + within) / this.#total);
  }

  /** Seconds left: extrapolated from the pace so far once there is some, else the estimates. */
  secondsLeft(): number {
    const elapsed = (performance.now() - this.#t0) / 1000;
    const f = this.fraction();
    if (f < 0.05) return Math.max(0, this.#total - elapsed);
    return (elapsed * (1 - f)) / f;
  }

  startSuite(index: number): void {
    this.#index = index;
    this.#done = 0;
    this.#label = "";
    if (this.enabled && !this.#timer) {
      // Redraw while a long C loop runs, so the spinner and clock keep moving (the loop holds the thread, so
      // this fires between calls; that is enough).
      this.#timer = setInterval(() => this.draw(), 250);
      (this.#timer as { unref?: () => void }).unref?.();
    }
    this.draw(true);
  }

  step(label: string, done?: number): void {
    if (done !== undefined) this.#done = done;
    else if (this.#label) this.#done++;
    this.#label = label;
    this.draw(true);
  }

  draw(force = false): void {
    if (!this.enabled || this.#index < 0) return;
    const now = performance.now();
    if (!force && now - this.#lastDraw < 80) return;
    this.#lastDraw = now;
    const s = this.#suites[this.#index]!;
    const spin = "|/-\\"[this.#spin++ % 4];
    const left = Math.round(this.secondsLeft());
    const eta = left >= 60 ? `${Math.floor(left / 60)}m${String(left % 60).padStart(2, "0")}s` : `${left}s`;
    let line = `${spin} bench ${s.name} (${this.#index + 1}/${this.#suites.length}) ${this.#label}  ~${eta} left`;
    const cols = this.#out.columns && this.#out.columns >= 20 ? this.#out.columns : 100;
    if (line.length > cols - 1) line = line.slice(0, cols - 2) + "…";
    this.#out.write(`\r\x1b[K${line}`);
  }

  /** Erase the line (before the result is printed). */
  clear(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.enabled) this.#out.write("\r\x1b[K");
  }
}
