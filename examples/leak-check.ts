// The specification's usage example ("Aether Runtime Safe Memory Allocation"), translated to TypeScript.
// Run it with:  npx aether run examples/leak-check.ts        (exit code 0: no leaks)
//               npx aether run examples/leak-check.ts leak   (forgets the free: exit code 1)
import { memory } from "aether-memory";

function main(): number {
  // Initialize memory system
  memory.init();

  // Allocate 100 bytes
  const buffer = memory.safeMalloc(100);
  if (buffer === null) return 2;

  // Use the buffer...
  memory.view(buffer, 100).fill(0x2a);

  // Free when done
  if (process.argv[2] !== "leak") memory.safeFree(buffer);

  // Check for leaks at program end
  const leaks = memory.checkLeaks();
  if (leaks > 0) {
    // Handle memory leaks
    return 1;
  }
  return 0;
}

process.exitCode = main();
