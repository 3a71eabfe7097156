#!/usr/bin/env bun
// The aether command. Bun runs this file directly (package.json "bin").
import { main } from "./lib/cli.ts";

// Everything the CLI prints goes through blocking writes (cli/lib/output.ts), so exiting here loses nothing.
process.exit(await main(process.argv.slice(2)));
