// The typed API of libaether for Bun programs: `import { memory } from "aether-memory"`.
export { memory, ERROR_KINDS, type ErrorKind, type MemoryEvent, type MemoryStats, type OptionName } from "./memory.ts";
export { benchAlloc, type BenchResult } from "./bench.ts";
export { cpuFeatures, cpuModel, libraryInfo } from "./system.ts";
export { stack, STACK_OVERFLOW_MESSAGE, STACK_SAFETY_MARGIN, type RecurseResult, type StackInfo } from "./stack.ts";
export { layout, parseElf, PERM, REGION_KIND, type ElfFile, type ElfHeader, type ElfSection, type ElfSegment, type LayoutReport, type Region } from "./layout.ts";
export { AetherError, LibraryError, loadedLibrary, type Pointer } from "./ffi.ts";
export { QState, simd, GATES, QKERNELS, SIMD_IMPLS, SIMD_WIDTH, type Matrix2, type QKernel, type SimdImpl, type KernelOptions } from "./qstate.ts";
export {
  DevicePools, DeviceContext, Trace, probeDevice, deviceBackends, verifyAuditFile, verifyAuditText, cryptoStatus,
  replayTrace, benchDevpool, benchDevpoolLive, BACKENDS, LEVELS, AUDIT_OPS, type BackendName, type BackendChoice,
  type Level, type Access, type AuditOp, type AuditRecord, type DeviceInfo, type PoolStats, type Leak,
  type ShareInfo, type ShareOptions, type ContextInfo, type PoolsOptions, type VerifyResult, type TraceInfo,
  type ReplayPoint, type ReplayResult,
} from "./devpool.ts";
export { Histogram, QUANTILES, type Percentiles } from "./histogram.ts";
export { Queue, benchQueue, type QueueKind, type QueueBenchKind } from "./queues.ts";
// (the aligned block pool's statistics are BlockPoolStats here; PoolStats are the device pools')
export { Pool, benchPool, type PoolOptions, type PoolStats as BlockPoolStats } from "./pool.ts";
export { NativeStress, runStress, type StressConfig, type StressProgress, type StressReport, type StressRunOptions, type StressTarget, type StressFault } from "./stress.ts";
