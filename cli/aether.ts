#!/usr/bin/env bun
// The aether command. Bun runs this file directly (package.json "bin").
import { main } from "./lib/cli.ts";

const code = await main(process.argv.slice(2));
// process.exit() drops whatever a pipe has not taken yet: a large --json read by a slow consumer (on a busy
// machine, or under a sanitizer) came out cut at 64 KiB. End both streams and wait until they are flushed, or
// failed (a reader that went away), as a blocking write would.
const ended = (s: NodeJS.WriteStream) =>
  new Promise<void>((resolve) => {
    s.once("error", () => resolve());
    s.end(() => resolve());
  });
await Promise.all([ended(process.stdout), ended(process.stderr)]);
process.exit(code);
