// `aether audit verify <file>`: check a hash-chained audit log of the device pools.
import { Command, Option } from "clipanion";
import { existsSync, statSync } from "node:fs";
import { AetherCommand, UsageError } from "../lib/command.ts";
import { color, printJson } from "../lib/output.ts";
import { verifyAuditFile } from "../native/devpool.ts";

export class AuditVerifyCommand extends AetherCommand {
  static override paths = [["audit", "verify"]];
  static override usage = Command.Usage({
    description: "verify a hash-chained audit log and name its first bad record",
    details: `
      Each line of an audit log written by the device pools (AETHER_AUDIT_LOG, or aether_devpool_set_audit_log)
      is a JSON record whose "hash" is the SHA-256 of the line up to that field and whose "prev" is the previous
      record's hash; "n" counts the records. A changed line fails its own hash (or the next line's prev, if the
      hash was recomputed); a removed, duplicated or moved line breaks n and prev. The first bad line is named and
      the exit code is 1; a log that verifies exits 0 and prints its head, the last record's hash. Cutting
      records off the end leaves a shorter valid chain: keep the head elsewhere and pass it with --expect-head.
    `,
    examples: [
      ["Verify a log", "aether audit verify audit.jsonl"],
      ["Verify against a head recorded earlier", "aether audit verify audit.jsonl --expect-head 5c89a984...67"],
    ],
  });

  file = Option.String({ required: true, name: "file" });
  expectHead = Option.String("--expect-head", { description: "the head (last record's hash) the log must end with" });
  json = Option.Boolean("--json", false, { description: "print JSON" });

  async execute(): Promise<number> {
    if (!existsSync(this.file)) throw new UsageError(`audit log not found: ${this.file}`);
    if (!statSync(this.file).isFile()) throw new UsageError(`${this.file} is not a file`);
    if (this.expectHead !== undefined && !/^[0-9a-f]{64}$/.test(this.expectHead))
      throw new UsageError(`--expect-head expects 64 lowercase hex digits, got '${this.expectHead}'`);
    const r = verifyAuditFile(this.file);
    let ok = r.ok;
    let reason = r.reason;
    if (ok && this.expectHead !== undefined && r.head !== this.expectHead) {
      ok = false;
      reason = `the log ends with head ${r.head}, not the expected ${this.expectHead}: records were removed from its end`;
    }
    if (this.json) {
      printJson({ file: this.file, verdict: ok ? "ok" : "tampered", status: ok ? "ok" : r.ok ? "AETHER_ERR_TAMPERED" : r.status,
        records: r.records, badLine: r.badLine, reason, head: r.head });
    } else if (ok) {
      this.out(`${color.green("ok")}: ${this.file}: ${r.records} records verify; head ${r.head}`);
    } else {
      const where = r.badLine ? `line ${r.badLine}` : `after line ${r.records}`;
      this.out(`${color.red(r.ok ? "AETHER_ERR_TAMPERED" : r.status)}: ${this.file}: ${where}: ${reason}`);
    }
    return ok ? 0 : 1;
  }
}
