// cli-numbers: the CLI's number parsers (parseCount, parseSeconds) under Jazzer.js, against the documented
// grammar; the oracle is shared with the builtin target of the same name (cli/lib/fuzz/ts/numbers.ts).
import { checkNumbers } from "../../cli/lib/fuzz/ts/numbers.ts";

export function fuzz(data: Buffer): string {
  return checkNumbers(new Uint8Array(data.buffer, data.byteOffset, data.length));
}
