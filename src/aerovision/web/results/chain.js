// AeroVision web UI: a chain's result — the verdict, then each step with its own
// verdict (as the server decided it, by the rule the step chose), what it read, its
// one-line result and its result.
import { errorBox, h, paramChips } from "../dom.js";
import { isFound, resultLine } from "../registry.js";

/** found / not found / skipped / error of one step: the server's verdict, which used the
 * step's own "found_when" rule when it chose one (so this screen never contradicts the chain's). */
function verdictOf(step) {
  if (step.status !== "done") return step.status;
  return step.found ? "found" : "not found";
}

/** The choices a step made beyond its params: its found rule and which input it read as what. */
function stepChoices(step) {
  const chips = [];
  if (step.found_when) chips.push(h("li", {}, `found when: ${step.found_when}`));
  if (step.inputs) {
    for (const [name, from] of Object.entries(step.inputs)) {
      chips.push(h("li", {}, `${name} ← ${from}`));
    }
  }
  return chips.length ? h("ul", { class: "chips step-choices" }, chips) : null;
}

function stepItem(step, task, ctx) {
  const tool = ctx.registry.get(step.tool);
  const verdict = verdictOf(step);
  const found = verdict === "found";
  const details = h("details", { class: `chain-step step-${step.status}${found ? " step-found" : ""}`,
    open: found || step.status === "error" },
    h("summary", {}, h("span", { class: "step-no" }, `Step ${step.step}`), " ",
      h("span", {}, ctx.registry.title(step.tool)), " ",
      h("span", { class: `badge verdict-${verdict.replace(" ", "-")}` }, verdict),
      step.status === "done" ? h("span", { class: "muted step-line" }, resultLine(tool, step.result_data)) : null),
    paramChips(step.params),
    stepChoices(step),
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
