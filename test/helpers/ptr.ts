// Pointer arithmetic for tests (bun:ffi pointers are plain numbers).
import type { Pointer } from "bun:ffi";

export const addr = (p: Pointer | null): number => (p as unknown as number) ?? 0;
export const at = (p: Pointer, delta: number): Pointer => ((p as unknown as number) + delta) as unknown as Pointer;
export const hex = (p: Pointer | number): string => `0x${(p as unknown as number).toString(16)}`;
