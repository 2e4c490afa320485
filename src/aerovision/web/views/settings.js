// AeroVision web UI: #/settings — edit, check and save the defaults of each tool that
// has settings (GET/PUT of its `settings` route in GET /api/v1/tools).
import { ApiError, api, relative } from "../api.js";
import { fill, h, setTitle } from "../dom.js";
import { paramEditor } from "../forms.js";
import { allStartingValues, fieldsOf, loadRegistry } from "../registry.js";

async function save(tool, editor, ui) {
  ui.save.disabled = true;
  try {
    const body = await api(relative(tool.settings), { method: "PUT", json: editor.read() });
    ui.stored = { ...body.params };
    editor.setDefaults(ui.stored); // the new values are the new defaults
    editor.set(ui.stored);
    ui.status.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    for (const e of err.errors) if (e.loc.length) editor.setError(String(e.loc[0]), e.msg);
    fill(ui.errors, h("strong", {}, "Not saved: "), err.message);
    ui.errors.hidden = false;
  } finally {
    ui.save.disabled = false;
  }
}

function settingsForm(tool, values) {
  const headingId = `settings-${tool.name}-title`;
  const ui = {
    stored: { ...values },
    status: h("p", { class: "save-status", role: "status" }),
    errors: h("div", { class: "alert error", role: "alert", hidden: true }),
    save: h("button", { type: "submit", class: "primary" },
      "Save", h("span", { class: "visually-hidden" }, ` ${tool.name} settings`)),
  };
  const editor = paramEditor(fieldsOf(tool), ui.stored, ui.stored, { idPrefix: `s-${tool.name}`, defaultWord: "saved" });
  const revert = h("button", { type: "button", class: "secondary", onclick: () => {
    editor.set(ui.stored);
    ui.errors.hidden = true;
    ui.status.textContent = "Changes undone.";
  } }, "Undo changes");
  const form = h("form", { class: "settings card", novalidate: true, "aria-labelledby": headingId },
    h("h2", { id: headingId }, tool.title),
    editor.root, ui.errors,
    h("div", { class: "row" }, ui.save, revert), ui.status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    ui.errors.hidden = true;
    ui.status.textContent = "";
    ui.status.classList.remove("bad");
    const bad = editor.validate();
    if (bad) {
      bad.focus();
      ui.status.classList.add("bad");
      ui.status.textContent = "Not saved: check the highlighted fields.";
      return;
    }
    await save(tool, editor, ui);
  });
  return form;
}

export async function viewSettings(root, _args, signal) {
  setTitle("Settings");
  const registry = await loadRegistry();
  const tools = registry.withSettings();
  const current = await allStartingValues(tools, signal);
  fill(root,
    h("h1", { tabindex: "-1" }, "Settings"),
    h("p", { class: "lead" }, "The defaults each tool starts from: a request that leaves a parameter out uses these. ",
      "They are shared by every process and survive restarts."),
    tools.length ? h("div", { class: "settings-grid" }, tools.map((tool) => settingsForm(tool, current[tool.name])))
      : h("p", { class: "muted" }, "No tool of this server has settings."));
}
