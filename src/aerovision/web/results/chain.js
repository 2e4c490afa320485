// AeroVision web UI: a chain's result — the verdict, then each step with its own
// verdict (the step tool's "found" rule), its one-line result and its result.
import { errorBox, h, paramChips } from "../dom.js";
import { isFound, resultLine } from "../registry.js";

/** found / not found / skipped / error of one step, by its tool's rule when the server lists it. */
function verdictOf(step, tool) {
  if (step.status !== "done") return step.status;
  const found = tool ? isFound(tool, step.result_data || {}) : Boolean(step.found);
  return found ? "found" : "not found";
}

function stepItem(step, task, ctx) {
  const tool = ctx.registry.get(step.tool);
  const verdict = verdictOf(step, tool);
  const found = verdict === "found";
  const details = h("details", { class: `chain-step step-${step.status}${found ? " step-found" : ""}`,
    open: found || step.status === "error" },
    h("summary", {}, h("span", { class: "step-no" }, `Step ${step.step}`), " ",
      h("span", {}, ctx.registry.title(step.tool)), " ",
      h("span", { class: `badge verdict-${verdict.replace(" ", "-")}` }, verdict),
      step.status === "done" ? h("span", { class: "muted step-line" }, resultLine(tool, step.result_data)) : null),
    paramChips(step.params),
    step.status === "error" ? errorBox(step.error || "failed", { title: "Step failed" }) : null,
    step.status === "done" ? ctx.render(step.tool, step.result_data || {}, step.result_files || []) : null,
    step.status === "skipped" ? h("p", { class: "muted" }, "Skipped: an earlier step found something.") : null);
  return h("li", {}, details);
}

export function chainResult(data, files, task, ctx) {
  const steps = Array.isArray(data.steps) ? data.steps : [];
  const found = ctx.tool ? isFound(ctx.tool, data) : data.chain_result === "found";
  return h("div", { class: "result-chain" },
    h("p", { class: `alert ${found ? "success" : "info"} chain-summary` },
      found ? `Found at step ${data.completed_step} of ${data.total_steps}.`
        : `Not found: ${data.total_steps ?? steps.length} step(s), the last that ran was step ${data.completed_step}.`),
    h("ol", { class: "chain-steps" }, steps.map((step) => stepItem(step, task, ctx))));
}
