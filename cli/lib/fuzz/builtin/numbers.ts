// numbers.ts (builtin): the CLI's number parsers (see ../ts/numbers.ts for what is checked).
import { checkNumbers } from "../ts/numbers.ts";
import { bytesTarget } from "./bytes-target.ts";

export const numbersTarget = bytesTarget({
  name: "cli-numbers",
  description: "the CLI's number parsers (parseCount, parseSeconds) against the documented grammar",
  maxLen: 40,
  check: checkNumbers,
  simplify: (d) => (d.length > 2 ? [d.subarray(0, d.length - 1), Uint8Array.from([...d.subarray(0, 2), ...d.subarray(3)])] : []),
  describe: (d) => `value ${JSON.stringify(new TextDecoder().decode(d.subarray(2)))}`,
});
