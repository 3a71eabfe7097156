// histogram.ts: latency histograms kept in C (log-linear buckets, 1.6% resolution, constant memory), typed.
// Every timed loop of the library (aether_bench_*) leaves the distribution of its timed pass behind on the
// calling thread; `addLast()` merges it here, so repetitions of a loop add up to one distribution.
import { check, native, type Pointer } from "./ffi.ts";

/** The quantiles `aether bench` reports for a latency, and their names. */
export const QUANTILES = [
  ["p50", 0.5],
  ["p75", 0.75],
  ["p90", 0.9],
  ["p95", 0.95],
  ["p99", 0.99],
  ["p99.5", 0.995],
  ["p99.9", 0.999],
  ["max", 1],
] as const;
export type QuantileName = (typeof QUANTILES)[number][0];
export type Percentiles = Record<QuantileName, number>;

export class Histogram {
  #h: Pointer | null;

  constructor() {
    const out = new BigUint64Array(1);
    check(native().aether_histogram_create(out), "aether_histogram_create");
    this.#h = Number(out[0]!) as unknown as Pointer;
  }

  get #handle(): Pointer {
    if (this.#h === null) throw new Error("the histogram was destroyed");
    return this.#h;
  }

  /** Count a latency of ns nanoseconds, count times. */
  record(ns: number, count = 1): this {
    check(native().aether_histogram_record(this.#handle, ns, BigInt(count)), "aether_histogram_record");
    return this;
  }
  /** Add the distribution of the last timed loop that finished on this thread. */
  addLast(): this {
    check(native().aether_histogram_add_last(this.#handle), "aether_histogram_add_last");
    return this;
  }
  merge(other: Histogram): this {
    check(native().aether_histogram_merge(this.#handle, other.#handle), "aether_histogram_merge");
    return this;
  }
  reset(): this {
    check(native().aether_histogram_reset(this.#handle), "aether_histogram_reset");
    return this;
  }
  get count(): number {
    return Number(native().aether_histogram_count(this.#handle));
  }
  get mean(): number {
    return native().aether_histogram_mean(this.#handle);
  }
  /** The mean of the values ranked between the qlo and qhi quantiles, in ns (0.25, 0.75: the interquartile
   * mean, robust to a coarse clock and to preempted operations). */
  meanBetween(qlo: number, qhi: number): number {
    return native().aether_histogram_mean_between(this.#handle, qlo, qhi);
  }
  /** The q quantiles (0..1) in ns. */
  quantiles(qs: readonly number[]): number[] {
    const q = Float64Array.from(qs);
    const out = new Float64Array(qs.length);
    check(native().aether_histogram_quantiles(this.#handle, q, out, qs.length), "aether_histogram_quantiles");
    return [...out];
  }
  /** p50 through p99.9 and the maximum, in ns. */
  percentiles(): Percentiles {
    const v = this.quantiles(QUANTILES.map(([, q]) => q));
    return Object.fromEntries(QUANTILES.map(([name], i) => [name, v[i]!])) as Percentiles;
  }

  destroy(): void {
    if (this.#h === null) return;
    native().aether_histogram_destroy(this.#h);
    this.#h = null;
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}
