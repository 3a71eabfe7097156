// The typed API of libaether for Bun programs: `import { memory } from "aether-memory"`.
export { memory, ERROR_KINDS, type ErrorKind, type MemoryEvent, type MemoryStats, type OptionName } from "./memory.ts";
export { benchAlloc, type BenchResult } from "./bench.ts";
export { cpuFeatures, cpuModel, libraryInfo } from "./system.ts";
export { AetherError, LibraryError, loadedLibrary, type Pointer } from "./ffi.ts";
export { Queue, benchQueue, type QueueKind, type QueueBenchKind } from "./queues.ts";
export { Pool, benchPool, type PoolOptions, type PoolStats } from "./pool.ts";
export { NativeStress, runStress, type StressConfig, type StressProgress, type StressReport, type StressRunOptions, type StressTarget, type StressFault } from "./stress.ts";
