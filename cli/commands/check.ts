import { Command, Option } from "clipanion";
import { AetherCommand, UsageError } from "../lib/command.ts";
import { color, printJson, table, verdictText, type Verdict } from "../lib/output.ts";
import { CHECKS } from "../checks/index.ts";
import type { CheckResult } from "../checks/types.ts";

export class CheckCommand extends AetherCommand {
  static override paths = [["check"]];
  static override usage = Command.Usage({
    description: "quick end-to-end self-check of every component (the main job)",
    details: `
      Runs a short real workload through each component of libaether and prints one line per component: a
      verdict and the figure it measured. Exits 0 only if every component passes (a component that cannot run
      on this machine, such as a GPU backend without a GPU, is skipped and says why).
    `,
    examples: [
      ["Check everything", "aether check"],
      ["Only the safe allocator, as JSON", "aether check --only alloc --json"],
    ],
  });

  json = Option.Boolean("--json", false, { description: "print JSON" });
  only = Option.Array("--only", { description: "check only these components (by id: " + CHECKS.map((c) => c.id).join(", ") + ")" });

  async execute(): Promise<number> {
    const selected = this.only ? CHECKS.filter((c) => this.only!.includes(c.id)) : CHECKS;
    const unknown = (this.only ?? []).filter((id) => !CHECKS.some((c) => c.id === id));
    if (unknown.length) throw new UsageError(`unknown component '${unknown[0]}' (known: ${CHECKS.map((c) => c.id).join(", ")})`);
    const results: (CheckResult & { component: string; id: string; seconds: number })[] = [];
    for (const c of selected) {
      const t0 = performance.now();
      let r: CheckResult;
      try {
        r = await c.run();
      } catch (e) {
        r = { verdict: "fail", figure: "check crashed", problems: [(e as Error).message.split("\n")[0]!] };
      }
      const seconds = (performance.now() - t0) / 1000;
      results.push({ component: c.component, id: c.id, seconds, ...r });
      if (!this.json) {
        this.out(table([[c.component.padEnd(18), verdictText(r.verdict), r.figure]]));
        for (const p of r.problems ?? []) this.out(`    ${color.red("-")} ${p}`);
      }
    }
    const failed = results.filter((r) => r.verdict === "fail").length;
    const verdict: Verdict = failed ? "fail" : "pass";
    if (this.json) printJson({ verdict, failed, results });
    else this.out(failed ? color.red(`${failed} component(s) failed`) : color.green(`all ${results.length} component(s) passed`));
    return failed ? 1 : 0;
  }
}
