#!/usr/bin/env bun
// The aether command. Bun runs this file directly (package.json "bin").
import { main } from "./lib/cli.ts";

const code = await main(process.argv.slice(2));
process.exit(code);
