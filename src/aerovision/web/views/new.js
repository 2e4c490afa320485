// AeroVision web UI: #/new/<tool> — choose a tool, its files and its parameters, and run it.
// Everything on the form comes from the tool's entry in GET /api/v1/tools.
import { ApiError, api, relative } from "../api.js";
import { errorBox, fill, h, setTitle } from "../dom.js";
import { fileDrop, paramEditor, presetBar } from "../forms.js";
import { allStartingValues, fieldsOf, loadRegistry, takesSteps } from "../registry.js";
import { chainBuilder } from "../steps.js";

/** "Template matching" → "template matching"; "ICP refinement" stays as it is. */
const inSentence = (title) => (/^[A-Z][A-Z]/.test(title) ? title : title.charAt(0).toLowerCase() + title.slice(1));

function toolPicker(list, current) {
  return h("fieldset", { class: "tool-picker" },
    h("legend", {}, "Tool"),
    h("div", { class: "tool-options" }, list.map((t) => {
      const id = `tool-${t.name}`;
      return h("div", { class: "tool-option" },
        h("input", { type: "radio", name: "tool", id, value: t.name, checked: t.name === current,
          "aria-describedby": `${id}-note` }),
        h("label", { for: id },
          h("span", { class: "tool-name" }, t.title),
          h("span", { class: "tool-note", id: `${id}-note` }, t.summary || "")));
    })));
}

/** The parameters of a single tool: presets, the fields, and "Reset to settings". */
function paramSet(tool, starting) {
  const fields = fieldsOf(tool);
  const editor = paramEditor(fields, starting, starting, { idPrefix: "p" });
  const presets = presetBar(tool, (values) => editor.set({ ...starting, ...values }));
  editor.onchange = () => presets?.unpress(); // edited by hand: no preset applies any more
  const reset = h("button", { type: "button", class: "link-button", onclick: () => {
    editor.set(starting);
    presets?.clearPressed();
  } }, tool.settings ? "Reset to settings" : "Reset to defaults");
  const root = h("fieldset", { class: "param-set" },
    h("legend", {}, "Parameters"),
    presets,
    fields.length ? editor.root : h("p", {}, "This tool has no parameters."),
    fields.length ? h("div", { class: "row-end" }, reset) : null);
  return { root, editor };
}

/** The form's state for the chosen tool: the drops in use and its parameters (or steps). */
function formParts(state, registry, settings) {
  const { tool } = state;
  while (state.drops.length < tool.inputs.length) state.drops.push(fileDrop(state.drops.length));
  state.active = state.drops.slice(0, tool.inputs.length);
  state.active.forEach((d, i) => d.configure(tool.inputs[i]));
  if (takesSteps(tool)) {
    state.editor = null;
    state.chain = chainBuilder(registry, settings, tool);
    return state.chain.root;
  }
  state.chain = null;
  const set = paramSet(tool, settings[tool.name] || {});
  state.editor = set.editor;
  return set.root;
}

function requestBody(state) {
  const body = new FormData();
  for (const d of state.active) for (const file of d.files()) body.append(d.name, file);
  if (state.chain) {
    body.append("steps", JSON.stringify(state.chain.read()));
  } else {
    for (const [name, value] of Object.entries(state.editor.readStrings())) body.append(name, value);
  }
  return body;
}

/** Puts each of the server's validation errors next to its field. */
function markRefusal(state, err) {
  for (const e of err.errors) {
    const [first, index, part, field] = e.loc;
    const drop = state.active.find((d) => d.name === first);
    if (drop) drop.setError(e.msg);
    else if (state.editor && typeof first === "string") state.editor.setError(first, e.msg);
    else if (state.chain && first === "steps" && typeof index === "number") {
      state.chain.setError(index, part === "params" ? field : null, e.msg);
    }
  }
}

function firstInvalid(state) {
  let first = null;
  for (const d of state.active) first ||= d.validate();
  const badParam = state.editor ? state.editor.validate() : state.chain.validate();
  return first || badParam;
}

async function submitTask(state, ui) {
  ui.hideErrors();
  const bad = firstInvalid(state);
  if (bad) {
    ui.showErrors("Check the highlighted fields.", []);
    bad.focus();
    return;
  }
  const label = ui.submit.textContent;
  ui.submit.disabled = true;
  ui.submit.textContent = "Uploading…";
  try {
    const task = await api(relative(state.tool.submit), { method: "POST", body: requestBody(state) });
    location.hash = `#/tasks/${task.uid}`;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    markRefusal(state, err);
    ui.showErrors(`The server refused the task (${err.status || "no answer"}):`,
      err.errors.length ? err.errors.map((e) => e.text) : [err.message]);
    ui.errors.focus();
  } finally {
    ui.submit.disabled = false;
    ui.submit.textContent = label;
  }
}

function errorsBox() {
  const errors = h("div", { class: "alert error form-errors", role: "alert", tabindex: "-1", hidden: true });
  return {
    errors,
    hideErrors() {
      errors.hidden = true;
      fill(errors);
    },
    showErrors(title, messages) {
      fill(errors, h("strong", {}, title),
        messages.length === 1 ? h("p", { class: "message" }, messages[0])
          : messages.length ? h("ul", {}, messages.map((m) => h("li", { class: "message" }, m))) : null);
      errors.hidden = false;
    },
  };
}

export async function viewNew(root, [wanted], signal) {
  setTitle("New task");
  const registry = await loadRegistry();
  const settings = await allStartingValues(registry.list, signal);
  const first = registry.get(wanted) || registry.list[0];
  if (!first) {
    fill(root, h("h1", { tabindex: "-1" }, "New task"), errorBox("This server offers no tool."));
    return;
  }
  const state = { tool: first, drops: [], active: [], editor: null, chain: null };
  const picker = toolPicker(registry.list, first.name);
  const dropGrid = h("div", { class: "drop-grid" });
  const paramsHolder = h("div", { class: "params-holder" });
  const settingsHint = h("p", { class: "hint" });
  const ui = { ...errorsBox(), submit: h("button", { type: "submit", class: "primary" }, "Run") };
  const form = h("form", { class: "new-task", novalidate: true, "aria-labelledby": "new-task-title" },
    picker, h("fieldset", { class: "inputs" }, h("legend", {}, "Files"), dropGrid),
    paramsHolder, ui.errors, h("div", { class: "submit-row" }, ui.submit, settingsHint));
  fill(root, h("h1", { id: "new-task-title", tabindex: "-1" }, "New task"), form);

  const useTool = (tool) => {
    state.tool = tool;
    setTitle(`New ${inSentence(tool.title)} task`);
    history.replaceState(null, "", `#/new/${tool.name}`);
    fill(paramsHolder, formParts(state, registry, settings));
    fill(dropGrid, state.active.map((d) => d.root));
    ui.submit.textContent = `Run ${inSentence(tool.title)}`;
    fill(settingsHint, tool.settings || takesSteps(tool)
      ? ["Fields start at the tool's current settings (", h("a", { href: "#/settings" }, "change them"), ")."]
      : "Fields start at the tool's defaults.");
    ui.hideErrors();
  };
  picker.addEventListener("change", (e) => {
    if (e.target.name === "tool") useTool(registry.get(e.target.value));
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitTask(state, ui);
  });
  useTool(first);
}
