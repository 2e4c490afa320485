// AeroVision web UI: the chain builder — add, reorder and remove steps, each one
// a chainable tool of GET /api/v1/tools with its own parameters and presets.
import { fill, h, uniqueId } from "./dom.js";
import { paramEditor, presetBar } from "./forms.js";
import { fieldsOf } from "./registry.js";

const NUMBER_WORDS = ["no", "one", "two", "three", "four", "five"];

/** A step's choices beyond its params: which of its tool's "found" rules decides (when
 * the tool has more than one) and which chain input each of its two inputs reads. */
function stepChoices(step, tool, chainInputs) {
  const rules = tool.found_when || [];
  step.foundSelect = rules.length > 1
    ? h("select", { id: `${step.key}-found` }, rules.map((r, i) =>
      h("option", { value: r.name }, i === 0 ? `${r.name} (default)` : r.name)))
    : null;
  const names = (tool.inputs || []).map((i) => i.name);
  const [a, b] = chainInputs;
  step.inputNames = names;
  step.inputsSelect = names.length === 2 && chainInputs.length === 2
    ? h("select", { id: `${step.key}-inputs` },
      h("option", { value: "order" }, `${names[0]} ← ${a}, ${names[1]} ← ${b} (default)`),
      h("option", { value: "swapped" }, `${names[0]} ← ${b}, ${names[1]} ← ${a}`))
    : null;
  const fields = [];
  if (step.foundSelect) {
    fields.push(h("div", { class: "field" },
      h("label", { for: step.foundSelect.id }, "Found when"), step.foundSelect));
  }
  if (step.inputsSelect) {
    fields.push(h("div", { class: "field" },
      h("label", { for: step.inputsSelect.id }, "Inputs"), step.inputsSelect));
  }
  return fields.length ? h("div", { class: "step-choices row" }, fields) : null;
}

/** What a step sends: its tool and params, and its choices only where they differ from
 * the defaults (so a plain step reads exactly as the seed's). */
function readStep(step, chainInputs) {
  const out = { tool: step.tool, params: step.editor.read() };
  if (step.foundSelect && step.foundSelect.selectedIndex > 0) out.found_when = step.foundSelect.value;
  if (step.inputsSelect?.value === "swapped") {
    out.inputs = { [step.inputNames[0]]: chainInputs[1], [step.inputNames[1]]: chainInputs[0] };
  }
  return out;
}

/** One step: its tool select, move/remove buttons and the chosen tool's form. */
function stepItem(registry, settings, tools, actions, chainInputs) {
  const step = { key: uniqueId("step"), tool: null, editor: null };
  const toolSelect = h("select", { id: `${step.key}-tool` },
    tools.map((t) => h("option", { value: t.name }, t.title)));
  const body = h("div", { class: "step-body" });
  const error = h("p", { class: "field-error", hidden: true });
  const legend = h("legend", {});
  const up = h("button", { type: "button", class: "icon", title: "Move up", onclick: () => actions.move(step, -1) }, "↑");
  const down = h("button", { type: "button", class: "icon", title: "Move down", onclick: () => actions.move(step, 1) }, "↓");
  const remove = h("button", { type: "button", class: "icon danger", title: "Remove", onclick: () => actions.remove(step) }, "✕");
  step.root = h("li", { class: "step" }, h("fieldset", {},
    legend,
    h("div", { class: "step-head" },
      h("div", { class: "field" }, h("label", { for: `${step.key}-tool` }, "Tool"), toolSelect),
      h("div", { class: "step-actions" }, up, down, remove)),
    error, body));
  Object.assign(step, { toolSelect, legend, up, down, remove, error });
  step.setTool = (name, values) => {
    const tool = registry.get(name);
    step.tool = name;
    toolSelect.value = name;
    step.editor = paramEditor(fieldsOf(tool), values || settings[name] || {}, settings[name] || {},
      { idPrefix: step.key, compact: true });
    const presets = presetBar(tool, (v) => step.editor.set({ ...settings[name], ...v }), { compact: true });
    step.editor.onchange = () => presets?.unpress();
    fill(body, presets, stepChoices(step, tool, chainInputs), step.editor.root);
  };
  toolSelect.addEventListener("change", () => step.setTool(toolSelect.value));
  return step;
}

/** Numbers, disabled ends and names of the steps' buttons after a change. */
function renumber(steps, maxSteps, addButton, counter) {
  steps.forEach((s, i) => {
    const n = i + 1;
    s.legend.textContent = `Step ${n}`;
    s.up.disabled = i === 0;
    s.down.disabled = i === steps.length - 1;
    s.remove.disabled = steps.length === 1;
    s.up.setAttribute("aria-label", `Move step ${n} up`);
    s.down.setAttribute("aria-label", `Move step ${n} down`);
    s.remove.setAttribute("aria-label", `Remove step ${n}`);
  });
  addButton.disabled = steps.length >= maxSteps;
  counter.textContent = `${steps.length} of at most ${maxSteps} steps`;
}

/** Moving and removing steps; focus stays on a button of the step moved, or the next step. */
function stepActions(steps, render, say) {
  return {
    move(step, delta) {
      const i = steps.indexOf(step);
      const j = i + delta;
      if (j < 0 || j >= steps.length) return;
      steps.splice(i, 1);
      steps.splice(j, 0, step);
      render();
      (delta < 0 ? (j === 0 ? step.down : step.up) : (j === steps.length - 1 ? step.up : step.down)).focus();
      say(`Step moved to position ${j + 1}.`);
    },
    remove(step) {
      const i = steps.indexOf(step);
      steps.splice(i, 1);
      render();
      steps[Math.min(i, steps.length - 1)]?.toolSelect.focus();
      say(`Step ${i + 1} removed; ${steps.length} left.`);
    },
  };
}

/**
 * The steps of a tool that runs other tools' steps (the chain): at most
 * registry.maxChainSteps, each of a tool with `chainable: true`.
 * settings: each tool's starting values, by name.
 */
export function chainBuilder(registry, settings, chainTool) {
  const tools = registry.chainable();
  const maxSteps = registry.maxChainSteps;
  const steps = [];
  const list = h("ol", { class: "steps" });
  const status = h("p", { class: "visually-hidden", role: "status" });
  const counter = h("span", { class: "muted" });
  const render = () => {
    fill(list, steps.map((s) => s.root));
    renumber(steps, maxSteps, addButton, counter);
  };
  const actions = stepActions(steps, () => render(), (text) => {
    status.textContent = text;
  });
  const chainInputs = (chainTool?.inputs || []).map((i) => i.name);
  const addStep = (name) => {
    const step = stepItem(registry, settings, tools, actions, chainInputs);
    step.setTool(name);
    steps.push(step);
    return step;
  };
  const addButton = h("button", { type: "button", class: "secondary", onclick: () => {
    addStep(steps.length ? steps[steps.length - 1].tool : tools[0].name);
    render();
    steps[steps.length - 1].toolSelect.focus();
    status.textContent = `Step ${steps.length} added.`;
  } }, "+ Add step");

  const count = chainTool?.inputs?.length ?? 2;
  const root = h("fieldset", { class: "param-set chain" },
    h("legend", {}, "Steps"),
    tools.length ? null : h("p", { class: "alert info" }, "This server offers no tool that can be a step."),
    h("p", { class: "hint" },
      `Steps run in order on the same ${NUMBER_WORDS[count] || count} file${count === 1 ? "" : "s"}; `,
      "a step runs only if every earlier one found nothing."),
    list,
    h("div", { class: "row" }, addButton, counter),
    status);
  if (tools.length) addStep(tools[0].name);
  render();
  if (!tools.length) addButton.disabled = true;

  return {
    root,
    read: () => steps.map((s) => readStep(s, chainInputs)),
    validate() {
      let first = null;
      for (const s of steps) {
        s.error.hidden = true;
        first ||= s.editor.validate();
      }
      return first;
    },
    setError(index, field, message) {
      const s = steps[index];
      if (!s) return;
      if (!(field && s.editor.setError(field, message))) {
        s.error.textContent = message;
        s.error.hidden = false;
      }
    },
  };
}
