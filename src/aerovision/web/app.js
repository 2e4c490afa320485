// AeroVision web UI: a hash-routed single page, plain DOM, no build step.
//   #/new[/<tool>]   new task        #/tasks[?page=N]  tasks list
//   #/tasks/<uid>    task view       #/settings        settings per tool
//   #/webhooks       webhooks
import { ApiError, api, checkValue, loadSchema, rangeText, typedValue } from "./api.js";

// ---------------------------------------------------------------- DOM helper

/** h("p", {class: "x", onclick: fn}, "text", child, [children]) */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Replace el's children; like replaceChildren() but skips null/false and flattens arrays. */
function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

let uniqueCounter = 0;
const uniqueId = (prefix) => `${prefix}-${++uniqueCounter}`;

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A file the API serves: "results/<uid>/matches.png" → "results/<uid>/matches.png" (escaped). */
const fileUrl = (path) => path.split("/").map(encodeURIComponent).join("/");
const basename = (path) => path.split("/").pop();

function formatTime(ts) {
  if (!ts) return "—";
  const date = new Date(`${ts}Z`);
  if (Number.isNaN(date.getTime())) return ts;
  return date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

function timeEl(ts) {
  return h("time", { datetime: ts ? `${ts}Z` : null, title: ts ? `${ts} UTC` : null }, formatTime(ts));
}

function formatNumber(value, digits = 4) {
  if (typeof value !== "number") return value === null || value === undefined ? "—" : String(value);
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(digits)));
}

// ---------------------------------------------------------------- what the tools are

const TOOL_ORDER = ["template", "feature", "surface", "chain"];

const TOOLS = {
  template: {
    label: "Template matching",
    short: "Template",
    summary: "Find every occurrence of a small image in a larger one.",
    kind: "image",
    inputs: ["image", "template"],
  },
  feature: {
    label: "Feature matching",
    short: "Feature",
    summary: "Match keypoints between two photos; outline one in the other.",
    kind: "image",
    inputs: ["query_image", "train_image"],
  },
  surface: {
    label: "Surface matching",
    short: "Surface",
    summary: "Find a 3D model in a 3D scene (PLY with normals).",
    kind: "ply",
    inputs: ["model_file", "scene_file"],
  },
  chain: {
    label: "Chain",
    short: "Chain",
    summary: "Run several steps on the same inputs until one finds something.",
    kind: "any",
    inputs: ["image", "template"],
  },
};

const toolLabel = (tool) => TOOLS[tool]?.label || tool;

// "Как выбрать параметры" of the seed documentation.
const PRESETS = {
  template: [
    { name: "Icon on a screenshot", note: "Exact pixel search; a high threshold for a single match.",
      values: { method: "TM_CCOEFF_NORMED", threshold: 0.9, use_grayscale: true } },
    { name: "Multi-detection", note: "Every copy of an object; a medium threshold plus NMS.",
      values: { method: "TM_CCOEFF_NORMED", threshold: 0.8, max_results: 50 } },
    { name: "Colour search", note: "When colour matters: no grayscale conversion.",
      values: { method: "TM_CCOEFF_NORMED", threshold: 0.8, use_grayscale: false } },
    { name: "Visual QC", note: "Is the element there? A strict threshold.",
      values: { method: "TM_CCOEFF_NORMED", threshold: 0.95 } },
  ],
  feature: [
    { name: "Panorama stitching", note: "High precision: false pairs distort a panorama.",
      values: { detector: "SIFT", matcher: "FLANN", ratio_threshold: 0.7 } },
    { name: "Object on a scene", note: "More matches allowed; the homography filters them.",
      values: { detector: "ORB", matcher: "BFMatcher", ratio_threshold: 0.75 } },
    { name: "Fast rough comparison", note: "Speed over precision: pre-filtering, batches.",
      values: { detector: "BRISK", matcher: "BFMatcher", ratio_threshold: 0.8 } },
    { name: "Maximum precision", note: "Measurement, stereo, calibration: drops doubtful pairs.",
      values: { detector: "SIFT", matcher: "FLANN", ratio_threshold: 0.6 } },
  ],
  surface: [
    { name: "Precise parts", note: "CAD model vs scan: a fine step, many ICP iterations.",
      values: { relative_sampling_step: 0.025, use_icp: true, icp_iterations: 200 } },
    { name: "Fast pose", note: "A rough estimate, real time: a coarse step, no ICP.",
      values: { relative_sampling_step: 0.1, use_icp: false } },
    { name: "Noisy scans", note: "Kinect/LiDAR data: a medium step, many ICP iterations.",
      values: { relative_sampling_step: 0.05, use_icp: true, icp_iterations: 300 } },
  ],
};

const LABELS = {
  method: "Method",
  threshold: "Threshold",
  max_results: "Max results",
  use_grayscale: "Grayscale",
  detector: "Detector",
  matcher: "Matcher",
  ratio_threshold: "Ratio threshold",
  max_matches: "Max matches",
  relative_sampling_step: "Sampling step",
  relative_distance_step: "Distance step",
  num_angles: "Angles",
  use_icp: "Refine with ICP",
  icp_tolerance: "ICP tolerance",
  icp_iterations: "ICP iterations",
  image: "Image",
  template: "Template",
  query_image: "Query image",
  train_image: "Train image",
  model_file: "Model",
  scene_file: "Scene",
  icp: "ICP",
  ppf: "PPF",
};
const labelOf = (name) =>
  LABELS[name] || name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

const IMAGE_ACCEPT = ".png,.jpg,.jpeg,.bmp,.tif,.tiff,image/png,image/jpeg,image/bmp,image/tiff";
const PLY_ACCEPT = ".ply";

// ---------------------------------------------------------------- shared pieces

function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

function errorBox(message, { title = "Error" } = {}) {
  return h("div", { class: "alert error", role: "alert" },
    h("strong", {}, `${title}: `),
    h("span", { class: "message" }, message));
}

function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

/** The value of a field formatted the way a person reads it. */
function showValue(value) {
  if (typeof value === "boolean") return value ? "on" : "off";
  return formatNumber(value);
}

/**
 * Form controls for a tool's parameters, built from the schema's fields.
 * values: starting values; defaults: what "default" means (current settings).
 */
function paramEditor(fields, values, defaults, { idPrefix, defaultWord = "default", compact = false }) {
  const root = h("div", { class: "params" });
  const controls = new Map();
  for (const field of fields) {
    const id = `${idPrefix}-${field.name}`;
    const hintId = `${id}-hint`;
    const errId = `${id}-err`;
    const def = defaults?.[field.name];
    let input;
    if (field.type === "enum") {
      input = h("select", { id, name: field.name, "aria-describedby": `${hintId} ${errId}` },
        field.options.map((o) => h("option", { value: o }, o)));
    } else if (field.type === "boolean") {
      input = h("input", { id, name: field.name, type: "checkbox", "aria-describedby": `${hintId} ${errId}` });
    } else {
      input = h("input", {
        id, name: field.name, type: "number", required: true,
        inputmode: field.type === "integer" ? "numeric" : "decimal",
        step: field.type === "integer" ? "1" : "any",
        min: field.min ?? field.exclusiveMin ?? null,
        max: field.max ?? field.exclusiveMax ?? null,
        "aria-describedby": `${hintId} ${errId}`,
      });
    }
    const range = rangeText(field);
    const defText = h("span", { class: "def" }, def === undefined ? "" : `${defaultWord} ${showValue(def)}`);
    const hint = h("p", { class: "hint", id: hintId },
      range ? h("span", { class: "range" }, range) : null,
      range && def !== undefined ? " · " : null,
      defText,
      !compact && (range || def !== undefined) && field.description ? " — " : null,
      compact ? null : field.description);
    const error = h("p", { class: "field-error", id: errId, hidden: true });
    const label = h("label", { for: id, title: compact ? field.description : null }, labelOf(field.name));
    const apiName = h("code", { class: "api-name", title: "Name in the API" }, field.name);
    const wrap = h("div", { class: `field field-${field.type}`, dataset: { name: field.name } },
      field.type === "boolean"
        ? h("div", { class: "check" }, input, label, apiName)
        : [h("div", { class: "label-row" }, label, apiName), input],
      hint, error);
    root.append(wrap);
    controls.set(field.name, { field, input, error, wrap, def, defText });
    const onChange = () => {
      markChanged(field.name);
      if (!error.hidden) validateOne(field.name);
      editor.onchange?.();
    };
    input.addEventListener("input", onChange);
    input.addEventListener("change", onChange);
  }

  function rawValue(c) {
    return c.field.type === "boolean" ? c.input.checked : c.input.value;
  }

  function markChanged(name) {
    const c = controls.get(name);
    if (c.def === undefined) return;
    const current = typedValue(c.field, rawValue(c));
    c.wrap.classList.toggle("changed", current !== c.def);
  }

  function setError(name, message) {
    const c = controls.get(name);
    if (!c) return false;
    c.error.textContent = message;
    c.error.hidden = !message;
    c.input.setAttribute("aria-invalid", message ? "true" : "false");
    c.wrap.classList.toggle("invalid", Boolean(message));
    return true;
  }

  function validateOne(name) {
    const c = controls.get(name);
    const message = checkValue(c.field, rawValue(c));
    setError(name, message);
    return message;
  }

  const editor = {
    root,
    controls,
    set(newValues) {
      for (const [name, value] of Object.entries(newValues || {})) {
        const c = controls.get(name);
        if (!c) continue;
        if (c.field.type === "boolean") c.input.checked = Boolean(value);
        else c.input.value = value === null || value === undefined ? "" : String(value);
        markChanged(name);
        setError(name, "");
      }
    },
    /** {name: typed value} for JSON bodies */
    read() {
      const out = {};
      for (const [name, c] of controls) out[name] = typedValue(c.field, rawValue(c));
      return out;
    },
    /** {name: string} for multipart form fields */
    readStrings() {
      const out = {};
      for (const [name, c] of controls) {
        out[name] = c.field.type === "boolean" ? String(c.input.checked) : c.input.value.trim();
      }
      return out;
    },
    /** Marks every invalid field; returns the first invalid control or null. */
    validate() {
      let first = null;
      for (const name of controls.keys()) {
        if (validateOne(name) && !first) first = controls.get(name).input;
      }
      return first;
    },
    setError,
    clearErrors() {
      for (const name of controls.keys()) setError(name, "");
    },
    onchange: null,
  };
  editor.set(values);
  return editor;
}

/** Preset buttons for a tool; onApply(values) gets the preset's values. */
function presetBar(tool, onApply, { compact = false } = {}) {
  const presets = PRESETS[tool];
  if (!presets) return null;
  const status = h("p", { class: "preset-status", role: "status" });
  const buttons = presets.map((preset) => {
    const button = h("button", {
      type: "button", class: "preset", "aria-pressed": "false",
      title: Object.entries(preset.values).map(([k, v]) => `${k}=${v}`).join(" "),
      onclick: () => {
        onApply(preset.values);
        for (const b of buttons) b.setAttribute("aria-pressed", String(b === button));
        status.textContent = `Applied “${preset.name}”: ${Object.entries(preset.values)
          .map(([k, v]) => `${k}=${v}`).join(", ")}.`;
      },
    }, h("span", { class: "preset-name" }, preset.name),
    compact ? null : h("span", { class: "preset-note" }, preset.note));
    if (compact) button.title = `${preset.note} (${button.title})`;
    return button;
  });
  const bar = h("div", { class: `presets${compact ? " compact" : ""}` },
    h("p", { class: "presets-title" }, "Presets"),
    h("div", { class: "preset-list" }, buttons),
    status);
  bar.unpress = () => {
    for (const b of buttons) b.setAttribute("aria-pressed", "false");
  };
  bar.clearPressed = () => {
    bar.unpress();
    status.textContent = "";
  };
  return bar;
}

// ---------------------------------------------------------------- router

const main = document.getElementById("main");
let currentAbort = null;

const ROUTES = [
  [/^#\/new(?:\/([a-z0-9_]+))?\/?$/, viewNew, "new"],
  [/^#\/tasks\/([0-9a-fA-F-]{8,})\/?$/, viewTask, "tasks"],
  [/^#\/tasks\/?(?:\?page=(\d+))?$/, viewTasks, "tasks"],
  [/^#\/settings\/?$/, viewSettings, "settings"],
  [/^#\/webhooks\/?$/, viewWebhooks, "webhooks"],
];

async function route() {
  const hash = location.hash || "#/new";
  if (!location.hash) history.replaceState(null, "", "#/new");
  currentAbort?.abort();
  const abort = new AbortController();
  currentAbort = abort;
  let found = null;
  for (const [pattern, view, section] of ROUTES) {
    const m = pattern.exec(hash);
    if (m) {
      found = { view, section, args: m.slice(1) };
      break;
    }
  }
  for (const link of document.querySelectorAll("nav.site a[data-section]")) {
    if (found && link.dataset.section === found.section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  fill(main, loading());
  main.setAttribute("aria-busy", "true");
  try {
    if (!found) {
      viewNotFound(main);
    } else {
      await found.view(main, found.args, abort.signal);
    }
  } catch (err) {
    if (abort.signal.aborted) return;
    fill(main,
      h("h1", { tabindex: "-1" }, "Something went wrong"),
      errorBox(err instanceof ApiError ? err.message : String(err?.message || err)),
      h("p", {}, h("a", { href: "#/new" }, "Start a new task")));
    console.error(err);
  } finally {
    if (!abort.signal.aborted) {
      main.removeAttribute("aria-busy");
      const heading = main.querySelector("h1");
      // move focus to the new page's heading (not on the first load: keep the skip link first)
      if (heading && route.count++ > 0) heading.focus({ preventScroll: false });
    }
  }
}
route.count = 0;

function setTitle(text) {
  document.title = text ? `${text} · AeroVision` : "AeroVision";
}

function viewNotFound(root) {
  setTitle("Not found");
  fill(root,
    h("h1", { tabindex: "-1" }, "Page not found"),
    h("p", {}, "Nothing lives at ", h("code", {}, location.hash), ". ",
      h("a", { href: "#/new" }, "Start a new task"), " or ", h("a", { href: "#/tasks" }, "see the tasks"), "."));
}

// ---------------------------------------------------------------- new task

async function getAllSettings(schema, signal) {
  const entries = await Promise.all(
    Object.keys(schema.settings).map(async (tool) => {
      const body = await api(`api/v1/settings/${tool}`, { signal });
      return [tool, body.params];
    }));
  return Object.fromEntries(entries);
}

async function viewNew(root, [wanted], signal) {
  setTitle("New task");
  const schema = await loadSchema();
  const settings = await getAllSettings(schema, signal);
  const available = TOOL_ORDER.filter((t) => schema.match[t])
    .concat(Object.keys(schema.match).filter((t) => !TOOL_ORDER.includes(t)));
  const shown = TOOL_ORDER.concat(available.filter((t) => !TOOL_ORDER.includes(t)));
  let tool = available.includes(wanted) ? wanted : available[0];
  if (!tool) {
    fill(root, h("h1", { tabindex: "-1" }, "New task"),
      errorBox("This server offers no matching tool."));
    return;
  }

  // --- tool picker
  const toolPicker = h("fieldset", { class: "tool-picker" },
    h("legend", {}, "Tool"),
    h("div", { class: "tool-options" }, shown.map((t) => {
      const id = `tool-${t}`;
      const off = !available.includes(t);
      return h("div", { class: `tool-option${off ? " unavailable" : ""}` },
        h("input", { type: "radio", name: "tool", id, value: t, checked: t === tool, disabled: off,
          "aria-describedby": `${id}-note` }),
        h("label", { for: id },
          h("span", { class: "tool-name" }, toolLabel(t)),
          h("span", { class: "tool-note", id: `${id}-note` },
            off ? "Not offered by this server yet." : TOOLS[t]?.summary || "")));
    })));

  // --- the two inputs
  const drops = [0, 1].map((slot) => fileDrop(slot));
  const inputsSet = h("fieldset", { class: "inputs" }, h("legend", {}, "Files"),
    h("div", { class: "drop-grid" }, drops.map((d) => d.root)));

  // --- parameters (single tool) or steps (chain)
  const paramsHolder = h("div", { class: "params-holder" });
  let editor = null;
  let chain = null;

  const errors = h("div", { class: "alert error form-errors", role: "alert", tabindex: "-1", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Run");
  const form = h("form", { class: "new-task", novalidate: true, "aria-labelledby": "new-task-title" },
    toolPicker, inputsSet, paramsHolder, errors,
    h("div", { class: "submit-row" }, submit,
      h("p", { class: "hint" }, "Fields start at the tool's current settings (",
        h("a", { href: "#/settings" }, "change them"), ").")));

  fill(root,
    h("h1", { id: "new-task-title", tabindex: "-1" }, "New task"),
    form);

  function useTool(next) {
    tool = next;
    setTitle(`New ${toolLabel(tool).toLowerCase()} task`);
    history.replaceState(null, "", `#/new/${tool}`);
    const spec = schema.match[tool];
    const inputNames = spec.inputs.length === 2 ? spec.inputs : TOOLS[tool].inputs.map((n) => ({ name: n }));
    inputNames.forEach((input, i) => drops[i].configure(input, TOOLS[tool]?.kind || "any"));
    submit.textContent = `Run ${toolLabel(tool).toLowerCase()}`;
    hideErrors();
    if (tool === "chain") {
      editor = null;
      chain = chainBuilder(schema, settings);
      fill(paramsHolder, chain.root);
    } else {
      chain = null;
      const fields = spec.params;
      editor = paramEditor(fields, settings[tool] || {}, settings[tool] || {}, { idPrefix: "p" });
      const presets = presetBar(tool, (values) => {
        editor.set({ ...settings[tool], ...values });
      });
      editor.onchange = () => presets?.unpress(); // edited by hand: no preset applies any more
      const reset = h("button", { type: "button", class: "link-button", onclick: () => {
        editor.set(settings[tool] || {});
        presets?.clearPressed();
      } }, "Reset to settings");
      fill(paramsHolder, h("fieldset", { class: "param-set" },
        h("legend", {}, "Parameters"),
        presets,
        fields.length ? editor.root : h("p", {}, "This tool has no parameters."),
        h("div", { class: "row-end" }, reset)));
    }
  }

  toolPicker.addEventListener("change", (e) => {
    if (e.target.name === "tool") useTool(e.target.value);
  });

  function hideErrors() {
    errors.hidden = true;
    fill(errors);
  }

  function showErrors(title, messages) {
    fill(errors, h("strong", {}, title),
      messages.length === 1 ? h("p", { class: "message" }, messages[0])
        : h("ul", {}, messages.map((m) => h("li", { class: "message" }, m))));
    errors.hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    hideErrors();
    let firstBad = null;
    for (const d of drops) {
      const bad = d.validate();
      firstBad ||= bad;
    }
    const badParam = editor ? editor.validate() : chain.validate();
    firstBad ||= badParam;
    if (firstBad) {
      fill(errors, h("strong", {}, "Check the highlighted fields."));
      errors.hidden = false;
      firstBad.focus();
      return;
    }
    const body = new FormData();
    drops.forEach((d) => body.append(d.name, d.file()));
    if (editor) {
      for (const [name, value] of Object.entries(editor.readStrings())) body.append(name, value);
    } else {
      body.append("steps", JSON.stringify(chain.read()));
    }
    submit.disabled = true;
    const label = submit.textContent;
    submit.textContent = "Uploading…";
    try {
      const task = await api(`api/v1/match/${tool}`, { method: "POST", body });
      location.hash = `#/tasks/${task.uid}`;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const lines = err.errors.length ? err.errors.map((e) => e.text) : [err.message];
      for (const e of err.errors) {
        const [first, index, part, field] = e.loc;
        const drop = drops.find((d) => d.name === first);
        if (drop) drop.setError(e.msg);
        else if (editor && typeof first === "string") editor.setError(first, e.msg);
        else if (chain && first === "steps" && typeof index === "number") {
          chain.setError(index, part === "params" ? field : null, e.msg);
        }
      }
      showErrors(`The server refused the task (${err.status || "no answer"}):`, lines);
      errors.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = label;
    }
  });

  useTool(tool);
}

/** A labelled file input that also takes a dropped file, with a preview. */
function fileDrop(slot) {
  const id = `file-${slot}`;
  const input = h("input", { type: "file", id, required: true, "aria-describedby": `${id}-help ${id}-err` });
  const title = h("span", { class: "drop-title" });
  const code = h("code", { class: "api-name", title: "Name in the API" });
  const help = h("span", { class: "drop-help", id: `${id}-help` });
  const preview = h("div", { class: "preview" });
  const error = h("p", { class: "field-error", id: `${id}-err`, hidden: true });
  const zone = h("div", { class: "drop" },
    h("div", { class: "label-row" }, h("label", { for: id, class: "drop-label" }, title), code),
    help,
    input,
    h("p", { class: "drop-hint", "aria-hidden": "true" }, "…or drop a file here"),
    preview, error);
  let previewUrl = null;
  let kind = "any";

  function setError(message) {
    error.textContent = message;
    error.hidden = !message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
    zone.classList.toggle("invalid", Boolean(message));
  }

  function showPreview() {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    const file = input.files?.[0];
    if (!file) {
      fill(preview);
      return;
    }
    const size = file.size >= 1048576 ? `${(file.size / 1048576).toFixed(1)} MB`
      : `${Math.max(1, Math.round(file.size / 1024))} KB`;
    const showable = /^image\/(png|jpeg|bmp|gif|webp)$/.test(file.type);
    if (showable) previewUrl = URL.createObjectURL(file);
    fill(preview,
      showable ? h("img", { src: previewUrl, alt: `Preview of ${file.name}`,
        onerror: (e) => e.target.replaceWith(h("span", { class: "no-preview" }, "no preview")) }) : null,
      h("p", { class: "file-name" }, file.name, h("span", { class: "muted" }, ` · ${size}`)));
  }

  input.addEventListener("change", () => {
    setError("");
    showPreview();
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    const file = e.dataTransfer?.files?.[0];
    if (!file) return;
    const transfer = new DataTransfer();
    transfer.items.add(file);
    input.files = transfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  return {
    root: zone,
    get name() {
      return input.name;
    },
    configure(spec, newKind) {
      input.name = spec.name;
      title.textContent = labelOf(spec.name);
      code.textContent = spec.name;
      help.textContent = spec.description || "";
      input.accept = newKind === "image" ? IMAGE_ACCEPT : newKind === "ply" ? PLY_ACCEPT : "";
      if (kind !== newKind && kind !== "any" && newKind !== "any") {
        input.value = "";
        showPreview();
      }
      kind = newKind;
      setError("");
    },
    file: () => input.files?.[0],
    validate() {
      if (!input.files?.length) {
        setError("Choose a file.");
        return input;
      }
      setError("");
      return null;
    },
    setError,
  };
}

/** The chain's steps: add, move, remove; each a tool with its parameters. */
function chainBuilder(schema, settings) {
  const tools = TOOL_ORDER.filter((t) => schema.settings[t])
    .concat(Object.keys(schema.settings).filter((t) => !TOOL_ORDER.includes(t)));
  const MAX_STEPS = 10;
  const list = h("ol", { class: "steps" });
  const status = h("p", { class: "visually-hidden", role: "status" });
  const addButton = h("button", { type: "button", class: "secondary", onclick: () => {
    const last = steps[steps.length - 1];
    addStep(last ? last.tool : tools[0]);
    render();
    steps[steps.length - 1].toolSelect.focus();
    status.textContent = `Step ${steps.length} added.`;
  } }, "+ Add step");
  const steps = [];

  function addStep(tool, values) {
    const step = { key: uniqueId("step"), tool, editor: null };
    const toolSelect = h("select", { id: `${step.key}-tool` },
      tools.map((t) => h("option", { value: t, selected: t === tool },
        schema.match[t] ? toolLabel(t) : `${toolLabel(t)} (not on this server yet)`)));
    const body = h("div", { class: "step-body" });
    const error = h("p", { class: "field-error", hidden: true });
    const legend = h("legend", {});
    const up = h("button", { type: "button", class: "icon", onclick: () => move(step, -1) }, "↑");
    const down = h("button", { type: "button", class: "icon", onclick: () => move(step, 1) }, "↓");
    const remove = h("button", { type: "button", class: "icon danger", onclick: () => removeStep(step) }, "✕");
    const toolLabelEl = h("label", { for: `${step.key}-tool` }, "Tool");
    step.root = h("li", { class: "step" }, h("fieldset", {},
      legend,
      h("div", { class: "step-head" },
        h("div", { class: "field" }, toolLabelEl, toolSelect),
        h("div", { class: "step-actions" }, up, down, remove)),
      error, body));
    Object.assign(step, { toolSelect, body, legend, up, down, remove, error });
    step.setTool = (next, vals) => {
      step.tool = next;
      const fields = schema.settings[next] || [];
      step.editor = paramEditor(fields, vals || settings[next] || {}, settings[next] || {},
        { idPrefix: step.key, compact: true });
      const presets = presetBar(next, (v) => step.editor.set({ ...settings[next], ...v }), { compact: true });
      step.editor.onchange = () => presets?.unpress();
      fill(step.body, presets, step.editor.root);
    };
    toolSelect.addEventListener("change", () => step.setTool(toolSelect.value));
    step.setTool(tool, values);
    steps.push(step);
    return step;
  }

  function move(step, delta) {
    const i = steps.indexOf(step);
    const j = i + delta;
    if (j < 0 || j >= steps.length) return;
    steps.splice(i, 1);
    steps.splice(j, 0, step);
    render();
    (delta < 0 ? (j === 0 ? step.down : step.up) : (j === steps.length - 1 ? step.up : step.down)).focus();
    status.textContent = `Step moved to position ${j + 1}.`;
  }

  function removeStep(step) {
    const i = steps.indexOf(step);
    steps.splice(i, 1);
    render();
    const next = steps[Math.min(i, steps.length - 1)];
    next?.toolSelect.focus();
    status.textContent = `Step ${i + 1} removed; ${steps.length} left.`;
  }

  function render() {
    fill(list, ...steps.map((s) => s.root));
    steps.forEach((s, i) => {
      const n = i + 1;
      s.legend.textContent = `Step ${n}`;
      s.up.disabled = i === 0;
      s.down.disabled = i === steps.length - 1;
      s.remove.disabled = steps.length === 1;
      s.up.setAttribute("aria-label", `Move step ${n} up`);
      s.down.setAttribute("aria-label", `Move step ${n} down`);
      s.remove.setAttribute("aria-label", `Remove step ${n}`);
      s.up.title = "Move up";
      s.down.title = "Move down";
      s.remove.title = "Remove";
    });
    addButton.disabled = steps.length >= MAX_STEPS;
    counter.textContent = `${steps.length} of at most ${MAX_STEPS} steps`;
  }

  const counter = h("span", { class: "muted" });
  addStep(tools[0]);
  const root = h("fieldset", { class: "param-set chain" },
    h("legend", {}, "Steps"),
    h("p", { class: "hint" },
      "Steps run in order on the same two files; a step runs only if every earlier one found nothing."),
    list,
    h("div", { class: "row" }, addButton, counter),
    status);
  render();

  return {
    root,
    read: () => steps.map((s) => ({ tool: s.tool, params: s.editor.read() })),
    validate() {
      let first = null;
      for (const s of steps) {
        s.error.hidden = true;
        const bad = s.editor.validate();
        first ||= bad;
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

// ---------------------------------------------------------------- task view

const TERMINAL = new Set(["done", "error"]);

async function viewTask(root, [uid], signal) {
  const schemaPromise = loadSchema().catch(() => ({ match: {}, settings: {} }));
  let task;
  try {
    task = await api(`api/v1/tasks/${uid}`, { signal });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      setTitle("Task not found");
      fill(root, h("h1", { tabindex: "-1" }, "Task not found"),
        errorBox(err.message, { title: "404" }),
        h("p", {}, h("a", { href: "#/tasks" }, "Back to the tasks")));
      return;
    }
    throw err;
  }
  const schema = await schemaPromise;

  const title = h("h1", { tabindex: "-1" });
  const statusLine = h("p", { class: "status-line", role: "status", "aria-live": "polite" });
  const meta = h("dl", { class: "meta" });
  const inputs = h("section", { class: "inputs-view", "aria-labelledby": "inputs-title" });
  const failure = h("div", {});
  const result = h("section", { class: "result", "aria-labelledby": "result-title" });
  const params = h("section", { class: "params-view", "aria-labelledby": "params-title" });
  const rawPre = h("pre", { class: "json", tabindex: "0" });
  const curlPre = h("pre", { class: "curl", tabindex: "0" });
  const copyStatus = h("span", { class: "copy-status", role: "status" });
  const copyButton = h("button", { type: "button", class: "secondary", onclick: async () => {
    const text = curlPre.textContent;
    try {
      await navigator.clipboard.writeText(text);
      copyStatus.textContent = "Copied the curl command.";
    } catch {
      curlDetails.open = true;
      const range = document.createRange();
      range.selectNodeContents(curlPre);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copyStatus.textContent = "Press Ctrl+C to copy the selected command.";
    }
  } }, "Copy as curl");
  const curlDetails = h("details", { class: "curl-details" }, h("summary", {}, "curl command"), curlPre);
  const rawDetails = h("details", { class: "raw" }, h("summary", {}, "Raw JSON"), rawPre);

  fill(root,
    h("p", { class: "crumbs" }, h("a", { href: "#/tasks" }, "← Tasks")),
    h("div", { class: "task-head" }, title, statusLine),
    meta,
    h("div", { class: "actions" }, copyButton, copyStatus,
      h("a", { class: "button secondary", href: `#/new/${task.tool}` }, "New task with this tool")),
    curlDetails,
    rawDetails,
    failure,
    inputs,
    result,
    params);

  let shownStatus = null;
  function update(t) {
    task = t;
    const pair = (term, value) => h("div", {}, h("dt", {}, term), " ", h("dd", {}, value));
    fill(meta,
      pair("Task", h("code", {}, t.uid)),
      pair("Created", timeEl(t.created_at)),
      pair("Updated", timeEl(t.updated_at)),
      TERMINAL.has(t.status) ? pair("Took", duration(t.created_at, t.updated_at)) : null);
    rawPre.textContent = JSON.stringify(t, null, 2);
    curlPre.textContent = curlFor(t, schema);
    if (t.status === shownStatus) return;
    // below: only when the status changes (the status line is a live region)
    shownStatus = t.status;
    setTitle(`${toolLabel(t.tool)} ${t.uid.slice(0, 8)} (${t.status})`);
    fill(title, toolLabel(t.tool), " ", h("span", { class: "uid" }, t.uid.slice(0, 8)));
    fill(statusLine, "Status: ", statusBadge(t.status),
      TERMINAL.has(t.status) ? null : h("span", { class: "spinner", "aria-hidden": "true" }));
    fill(failure, t.status === "error"
      ? errorBox(t.error || "The task failed without a message.", { title: "The task failed" }) : []);
    fill(inputs, h("h2", { id: "inputs-title" }, "Inputs"), thumbnails(t));
    fill(params, h("h2", { id: "params-title" }, "Parameters"), paramsTable(t));
    if (t.status === "done") {
      result.hidden = false;
      fill(result, h("h2", { id: "result-title" }, "Result"),
        renderResult(t.tool, t.result_data || {}, t.result_files || [], t));
    } else if (t.status === "error") {
      result.hidden = true;
      fill(result);
    } else {
      result.hidden = false;
      fill(result, h("h2", { id: "result-title" }, "Result"),
        h("p", { class: "muted waiting" }, t.status === "queued"
          ? "Waiting for a worker… this page updates by itself."
          : "A worker is on it… this page updates by itself."));
    }
  }
  update(task);

  // live status: poll (in the background) until the task ends or the page changes
  (async () => {
    let delay = 250;
    while (!TERMINAL.has(task.status) && !signal.aborted) {
      await sleep(delay, signal);
      if (signal.aborted) return;
      delay = Math.min(delay * 1.5, 2000);
      try {
        update(await api(`api/v1/tasks/${uid}`, { signal }));
      } catch (err) {
        if (signal.aborted) return;
        fill(statusLine, "Status: ", statusBadge(task.status),
          h("span", { class: "muted" }, ` (cannot refresh: ${err.message})`));
        shownStatus = null; // redraw once the server answers again
      }
    }
  })();
}

function duration(from, to) {
  const ms = new Date(`${to}Z`) - new Date(`${from}Z`);
  if (!Number.isFinite(ms)) return "—";
  if (ms < 1000) return "under 1 s";
  if (ms < 60000) return `${Math.round(ms / 1000)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** curl that submits the same files with the task's effective parameters. */
function curlFor(task, schema) {
  const quote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
  const spec = schema.match?.[task.tool];
  const names = spec?.inputs?.length ? spec.inputs.map((i) => i.name) : TOOLS[task.tool]?.inputs || [];
  const base = new URL(".", location.href).href.replace(/\/$/, "");
  const lines = [`curl -X POST ${quote(`${base}/api/v1/match/${task.tool}`)}`];
  (task.input_files || []).forEach((path, i) => {
    lines.push(`-F ${quote(`${names[i] || `file${i + 1}`}=@${basename(path)}`)}`);
  });
  if (task.tool === "chain") {
    const steps = (task.params?.steps || []).map((s) => ({ tool: s.tool, params: s.params }));
    lines.push(`-F ${quote(`steps=${JSON.stringify(steps)}`)}`);
  } else {
    for (const [key, value] of Object.entries(task.params || {})) {
      lines.push(`-F ${quote(`${key}=${value}`)}`);
    }
  }
  return lines.join(" \\\n  ");
}

function thumbnails(task) {
  const names = TOOLS[task.tool]?.inputs || [];
  const started = task.status !== "queued";
  return h("div", { class: "thumbs" }, (task.input_files || []).map((path, i) => {
    const thumb = task.thumbnails?.[i];
    const name = basename(path);
    const figure = h("figure", { class: "thumb" });
    const caption = h("figcaption", {},
      h("span", { class: "muted" }, `${labelOf(names[i] || `input ${i + 1}`)}: `),
      h("a", { href: fileUrl(path), target: "_blank", rel: "noopener" }, name));
    const placeholder = () => h("div", { class: "thumb-missing" },
      started ? "No preview" : "Preview when the task starts");
    if (thumb && started) {
      const img = h("img", { src: fileUrl(thumb), alt: `Thumbnail of ${name}`, loading: "lazy" });
      img.addEventListener("error", () => img.replaceWith(placeholder()));
      figure.append(img);
    } else {
      figure.append(placeholder());
    }
    figure.append(caption);
    return figure;
  }));
}

function paramsTable(task) {
  if (task.tool === "chain") {
    const steps = task.params?.steps || [];
    return h("ol", { class: "param-steps" }, steps.map((s) =>
      h("li", {}, h("strong", {}, toolLabel(s.tool)), " ", paramChips(s.params))));
  }
  return paramChips(task.params || {});
}

function paramChips(params) {
  return h("ul", { class: "chips" }, Object.entries(params || {}).map(([k, v]) =>
    h("li", {}, h("code", {}, k), "=", h("span", {}, showValue(v)))));
}

function stats(pairs) {
  return h("dl", { class: "stats" }, pairs.filter(Boolean).map(([label, value]) =>
    h("div", {}, h("dt", {}, label), h("dd", {}, value))));
}

function renderResult(tool, data, files, task) {
  switch (tool) {
    case "template": return templateResult(data, files, task);
    case "feature": return featureResult(data, files, task);
    case "surface": return surfaceResult(data, files);
    case "chain": return chainResult(data, task);
    default: return genericResult(data, files);
  }
}

function genericResult(data, files) {
  return h("div", {},
    stats(Object.entries(data).filter(([, v]) => typeof v !== "object").map(([k, v]) => [labelOf(k), showValue(v)])),
    resultPictures(files));
}

function resultPictures(files, skip = []) {
  const pictures = files.filter((f) => /\.(png|jpe?g)$/i.test(f) && !skip.includes(f));
  return h("div", { class: "pictures" }, pictures.map((path) =>
    h("figure", { class: "picture" },
      h("a", { href: fileUrl(path), target: "_blank", rel: "noopener" },
        h("img", { src: fileUrl(path), alt: `Result picture ${basename(path)}` })),
      h("figcaption", {}, h("a", { href: fileUrl(path), download: basename(path) }, basename(path))))));
}

/**
 * A picture with overlays that stay aligned: the stage keeps the image's
 * aspect ratio and an SVG in the image's own pixel coordinates lies on top.
 */
function stage({ src, alt, fallback }) {
  const base = h("img", { class: "stage-base", src: fileUrl(src), alt });
  const overlay = h("img", { class: "stage-overlay", alt: "", hidden: true });
  const layer = svg("svg", { class: "stage-svg", "aria-hidden": "true", preserveAspectRatio: "none" });
  const root = h("div", { class: "stage" }, base, overlay, layer);
  base.addEventListener("load", () => {
    const w = base.naturalWidth;
    const ht = base.naturalHeight;
    layer.setAttribute("viewBox", `0 0 ${w} ${ht}`);
    root.style.setProperty("--aspect", String(w / ht));
    root.style.setProperty("--natural-width", `${w}px`);
  });
  base.addEventListener("error", () => {
    if (fallback && base.getAttribute("src") !== fileUrl(fallback.src)) {
      base.src = fileUrl(fallback.src);
      base.alt = fallback.alt;
    } else if (!fallback) {
      // e.g. a TIFF input: browsers do not display TIFF
      root.replaceWith(h("p", { class: "muted" }, `This browser cannot display ${basename(base.getAttribute("src"))}.`));
    }
  });
  return {
    root, base, overlay, layer,
    setBase(path, text, fb) {
      fallback = fb;
      if (base.getAttribute("src") !== fileUrl(path)) base.src = fileUrl(path);
      base.alt = text;
    },
  };
}

function templateResult(data, files, task) {
  const matches = Array.isArray(data.matches) ? data.matches : [];
  const matchesPng = files.find((f) => f.endsWith("matches.png"));
  const heatmapPng = files.find((f) => f.endsWith("heatmap.png"));
  const source = task.input_files?.[0];
  const parts = [];
  parts.push(stats([
    ["Matches", `${data.matches_found ?? matches.length}`],
    ["Passed threshold + NMS", `${data.filtered_matches ?? "—"}`],
    ["Best score", formatNumber(data.best_score)],
    ["Method", data.method ?? "—"],
    data.score_mode ? ["Scores", data.score_mode] : null,
  ]));
  if (!matches.length) {
    parts.push(h("p", { class: "alert info" }, "No match passed the threshold",
      typeof data.best_score === "number" ? ` (best score anywhere: ${formatNumber(data.best_score)})` : "",
      "."));
  }

  if (matchesPng) {
    const view = stage({ src: matchesPng, alt: `Matches drawn on ${basename(source || "the image")}` });
    const boxes = svg("g", { class: "boxes" });
    const highlight = svg("rect", { class: "box-highlight", visibility: "hidden" });
    view.layer.append(boxes, highlight);
    for (const m of matches) {
      boxes.append(svg("rect", { x: m.x, y: m.y, width: m.w, height: m.h }));
    }
    const name = uniqueId("view");
    const opacityId = uniqueId("opacity");
    const opacity = h("input", { type: "range", id: opacityId, min: "0", max: "100", value: "60", step: "5" });
    const opacityOut = h("output", { for: opacityId }, "60 %");
    const opacityRow = h("div", { class: "opacity", hidden: true },
      h("label", { for: opacityId }, "Heat map opacity"), opacity, opacityOut);
    const radios = [
      ["matches", "Matches"],
      heatmapPng ? ["heat", "Heat map over the image"] : null,
    ].filter(Boolean).map(([value, text], i) => {
      const id = `${name}-${value}`;
      return h("span", { class: "radio" },
        h("input", { type: "radio", name, id, value, checked: i === 0 }),
        h("label", { for: id }, text));
    });
    const switcher = h("fieldset", { class: "view-switch" }, h("legend", {}, "Show"), radios, opacityRow);
    const applyOpacity = () => {
      view.overlay.style.opacity = String(Number(opacity.value) / 100);
      opacityOut.textContent = `${opacity.value} %`;
    };
    opacity.addEventListener("input", applyOpacity);
    switcher.addEventListener("change", (e) => {
      if (e.target.name !== name) return;
      const heat = e.target.value === "heat";
      if (heat) {
        view.setBase(source || matchesPng, `The input image ${basename(source || matchesPng)}`,
          { src: matchesPng, alt: "Matches drawn on the image" });
        view.overlay.src = fileUrl(heatmapPng);
        view.overlay.alt = "Heat map of the match score";
        applyOpacity();
      } else {
        view.setBase(matchesPng, `Matches drawn on ${basename(source || "the image")}`);
      }
      view.overlay.hidden = !heat;
      boxes.classList.toggle("visible", heat);
      opacityRow.hidden = !heat;
    });
    const viewer = h("div", { class: "viewer" }, switcher, view.root,
      h("p", { class: "downloads" }, "Download: ", files.map((f, i) =>
        [i ? " · " : "", h("a", { href: fileUrl(f), download: basename(f) }, basename(f))])));
    const side = h("div", { class: "side" });
    parts.push(h("div", { class: "template-layout" }, viewer, side));
    if (matches.length) {
      append(side, [h("h3", {}, "Match table"),
        sortableTable({
          caption: `${matches.length} match${matches.length === 1 ? "" : "es"}, best first; hover a row to find it on the picture.`,
          columns: [
            { key: "rank", label: "#", numeric: true },
            { key: "x", label: "x", numeric: true },
            { key: "y", label: "y", numeric: true },
            { key: "w", label: "w", numeric: true },
            { key: "h", label: "h", numeric: true },
            { key: "score", label: "Score", numeric: true, format: (v) => v.toFixed(4) },
          ],
          rows: matches.map((m, i) => ({ ...m, rank: i + 1 })),
          className: "matches",
          onRowEnter: (m) => {
            for (const [k, v] of Object.entries({ x: m.x, y: m.y, width: m.w, height: m.h })) highlight.setAttribute(k, v);
            highlight.setAttribute("visibility", "visible");
          },
          onRowLeave: () => highlight.setAttribute("visibility", "hidden"),
        })]);
    }
  } else {
    parts.push(resultPictures(files));
  }
  return h("div", { class: "result-template" }, parts);
}

function sortableTable({ caption, columns, rows, className, onRowEnter, onRowLeave }) {
  let sortKey = null;
  let ascending = true;
  const tbody = h("tbody", {});
  const headers = columns.map((col) => {
    const button = h("button", { type: "button", class: "sort", onclick: () => {
      if (sortKey === col.key) ascending = !ascending;
      else {
        sortKey = col.key;
        ascending = col.key !== "score";
      }
      draw();
    } }, col.label, h("span", { class: "sort-mark", "aria-hidden": "true" }));
    return h("th", { scope: "col", class: col.numeric ? "num" : null, dataset: { key: col.key } }, button);
  });
  function draw() {
    const sorted = rows.slice();
    if (sortKey) {
      sorted.sort((a, b) => {
        const d = a[sortKey] < b[sortKey] ? -1 : a[sortKey] > b[sortKey] ? 1 : 0;
        return ascending ? d : -d;
      });
    }
    headers.forEach((th) => {
      const active = th.dataset.key === sortKey;
      if (active) th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
      th.querySelector(".sort-mark").textContent = active ? (ascending ? " ▲" : " ▼") : " ↕";
    });
    fill(tbody, ...sorted.map((row) => {
      const tr = h("tr", {}, columns.map((col) =>
        h("td", { class: col.numeric ? "num" : null }, col.format ? col.format(row[col.key]) : String(row[col.key]))));
      if (onRowEnter) {
        tr.addEventListener("mouseenter", () => onRowEnter(row));
        tr.addEventListener("mouseleave", () => onRowLeave?.(row));
      }
      return tr;
    }));
  }
  draw();
  return h("div", { class: "table-wrap" }, h("table", { class: className || "" },
    h("caption", {}, caption), h("thead", {}, h("tr", {}, headers)), tbody));
}

function matrixTable(matrix, caption, digits = 6) {
  return h("div", { class: "table-wrap" }, h("table", { class: "matrix" },
    h("caption", {}, caption),
    h("tbody", {}, matrix.map((row) => h("tr", {}, row.map((v) =>
      h("td", { class: "num" }, typeof v === "number" ? formatNumber(v, digits) : String(v))))))));
}

function featureResult(data, files, task) {
  const parts = [];
  const yesNo = (v) => (v === undefined ? "—" : v ? "yes" : "no");
  parts.push(stats([
    ["Found", yesNo(data.found)],
    ["Good matches", formatNumber(data.good_matches)],
    ["Inliers", data.inliers === undefined ? "—"
      : `${data.inliers}${typeof data.inlier_ratio === "number" ? ` (${Math.round(data.inlier_ratio * 100)} %)` : ""}`],
    ["Query keypoints", formatNumber(data.query_keypoints)],
    ["Train keypoints", formatNumber(data.train_keypoints)],
    ["Detector / matcher", `${data.detector ?? "—"} / ${data.matcher ?? "—"}`],
  ]));
  const matchesPng = files.find((f) => f.endsWith("matches.png"));
  if (matchesPng) {
    parts.push(h("figure", { class: "picture wide" },
      h("a", { href: fileUrl(matchesPng), target: "_blank", rel: "noopener" },
        h("img", { src: fileUrl(matchesPng), alt: "Keypoint matches between the query and the train image" })),
      h("figcaption", {}, "Good matches, query left, train right · ",
        h("a", { href: fileUrl(matchesPng), download: basename(matchesPng) }, basename(matchesPng)))));
  }
  parts.push(resultPictures(files, matchesPng ? [matchesPng] : []));
  const train = task.input_files?.[1];
  const outline = h("div", {}, h("h3", {}, "Outline on the train image"));
  if (Array.isArray(data.corners) && data.corners.length === 4 && train) {
    const view = stage({ src: train, alt: `The train image ${basename(train)} with the query's outline` });
    const points = data.corners.map(([x, y]) => `${x},${y}`).join(" ");
    view.layer.append(svg("polygon", { class: "outline", points }));
    if (Array.isArray(data.center)) {
      view.layer.append(svg("circle", { class: "center", cx: data.center[0], cy: data.center[1], r: 4 }));
    }
    append(outline, [h("div", { class: "viewer" }, view.root),
      h("p", { class: "muted" }, "Corners (train pixels): ",
        data.corners.map(([x, y]) => `(${formatNumber(x, 6)}, ${formatNumber(y, 6)})`).join(", "))]);
  } else {
    append(outline, [h("p", { class: "muted" }, "No outline: no trustworthy homography was found.")]);
  }
  const homography = h("div", {}, h("h3", {}, "Homography"),
    Array.isArray(data.homography)
      ? matrixTable(data.homography, "3×3, query pixels → train pixels")
      : h("p", { class: "muted" }, "None (too few consistent matches)."));
  parts.push(h("div", { class: "split" }, outline, homography));
  return h("div", { class: "result-feature" }, parts);
}

function surfaceResult(data, files) {
  const parts = [];
  parts.push(stats([
    ["Poses found", formatNumber(data.poses_found)],
    data.score !== undefined ? ["Score", formatNumber(data.score)] : null,
    ["ICP residual", formatNumber(data.icp_residual)],
    ["Model points", formatNumber(data.num_model_points)],
    ["Scene points", formatNumber(data.num_scene_points)],
  ]));
  parts.push(h("h3", {}, "Pose"));
  parts.push(Array.isArray(data.pose)
    ? matrixTable(data.pose, "4×4 rigid transform, model coordinates → scene coordinates")
    : h("p", { class: "muted" }, "No pose: the model was not found in the scene."));
  if (data.timings && typeof data.timings === "object") {
    const unit = (k) => (/_ms$/.test(k) ? " ms" : /_s$/.test(k) ? " s" : "");
    parts.push(h("h3", {}, "Timings"), stats(Object.entries(data.timings).map(([k, v]) =>
      [labelOf(k.replace(/_(ms|s)$/, "")), typeof v === "number" ? `${formatNumber(v, 3)}${unit(k)}` : String(v)])));
  }
  parts.push(h("h3", {}, "Pictures"), resultPictures(files));
  return h("div", { class: "result-surface" }, parts);
}

function chainResult(data, task) {
  const steps = Array.isArray(data.steps) ? data.steps : [];
  const found = data.chain_result === "found";
  const parts = [h("p", { class: `alert ${found ? "success" : "info"} chain-summary` },
    found ? `Found at step ${data.completed_step} of ${data.total_steps}.`
      : `Not found: ${data.total_steps ?? steps.length} step(s), the last that ran was step ${data.completed_step}.`)];
  parts.push(h("ol", { class: "chain-steps" }, steps.map((step) => {
    const verdict = step.status === "done" ? (step.found ? "found" : "not found") : step.status;
    const details = h("details", { class: `chain-step step-${step.status}${step.found ? " step-found" : ""}`,
      open: Boolean(step.found) || step.status === "error" },
      h("summary", {}, h("span", { class: "step-no" }, `Step ${step.step}`), " ",
        h("span", {}, toolLabel(step.tool)), " ",
        h("span", { class: `badge verdict-${verdict.replace(" ", "-")}` }, verdict),
        step.status === "done" ? h("span", { class: "muted" }, resultSummary(step.tool, step.result_data || {})) : null),
      paramChips(step.params),
      step.status === "error" ? errorBox(step.error || "failed", { title: "Step failed" }) : null,
      step.status === "done"
        ? renderResult(step.tool, step.result_data || {}, step.result_files || [], task) : null,
      step.status === "skipped" ? h("p", { class: "muted" }, "Skipped: an earlier step found something.") : null);
    return h("li", {}, details);
  })));
  return h("div", { class: "result-chain" }, parts);
}

// ---------------------------------------------------------------- tasks list

const PAGE_SIZE = 20;

function taskSummary(t) {
  if (t.status === "error") return t.error || "failed";
  if (t.status !== "done") return "";
  return resultSummary(t.tool, t.result_data || {});
}

function resultSummary(tool, d) {
  switch (tool) {
    case "template":
      return `${d.filtered_matches ?? 0} match${d.filtered_matches === 1 ? "" : "es"}, best ${formatNumber(d.best_score)}`;
    case "feature":
      return `${d.good_matches ?? 0} good matches${d.found === undefined ? "" : d.found ? ", found" : ", not found"}`;
    case "surface":
      return `${d.poses_found ?? 0} pose(s)${typeof d.icp_residual === "number" ? `, residual ${formatNumber(d.icp_residual)}` : ""}`;
    case "chain":
      return d.chain_result === "found" ? `found at step ${d.completed_step}/${d.total_steps}` : "not found";
    default:
      return "";
  }
}

async function viewTasks(root, [pageArg], signal) {
  setTitle("Tasks");
  const page = Math.max(1, Number.parseInt(pageArg || "1", 10) || 1);
  const heading = h("h1", { tabindex: "-1" }, "Tasks");
  const body = h("div", {});
  const live = h("p", { class: "visually-hidden", role: "status" });
  fill(root, h("div", { class: "title-row" }, heading,
    h("a", { class: "button primary", href: "#/new" }, "New task")), live, body);

  let lastKey = null;
  const load = async () => {
    const data = await api(`api/v1/tasks?offset=${(page - 1) * PAGE_SIZE}&limit=${PAGE_SIZE}`, { signal });
    const key = JSON.stringify(data.tasks.map((t) => [t.uid, t.status]).concat([data.total]));
    if (key !== lastKey) {
      if (lastKey !== null) live.textContent = "The list was updated.";
      lastKey = key;
      fill(body, tasksTable(data, page));
    }
    return data.tasks.some((t) => !TERMINAL.has(t.status));
  };
  let active = await load();
  // keep the statuses live: often while some task on the page runs, now and then otherwise
  (async () => {
    while (!signal.aborted) {
      await sleep(active ? 1000 : 5000, signal);
      if (signal.aborted) return;
      try {
        active = await load();
      } catch {
        active = false; // try again later
      }
    }
  })();
}

function tasksTable(data, page) {
  const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
  if (!data.total) {
    return h("p", {}, "No tasks yet. ", h("a", { href: "#/new" }, "Start one"), ".");
  }
  const first = (page - 1) * PAGE_SIZE + 1;
  const last = Math.min(data.total, first + data.tasks.length - 1);
  const pager = h("nav", { class: "pager", "aria-label": "Pages" },
    page > 1 ? h("a", { href: `#/tasks?page=${page - 1}`, rel: "prev" }, "← Newer") : h("span", { class: "muted" }, "← Newer"),
    h("span", {}, data.tasks.length ? `${first}–${last} of ${data.total}` : `page ${page} of ${pages}`),
    page < pages ? h("a", { href: `#/tasks?page=${page + 1}`, rel: "next" }, "Older →") : h("span", { class: "muted" }, "Older →"));
  const rows = data.tasks.map((t) => {
    const link = h("a", { href: `#/tasks/${t.uid}`, class: "task-link" }, h("code", {}, t.uid.slice(0, 8)));
    const tr = h("tr", { class: "clickable" },
      h("td", {}, link),
      h("td", {}, TOOLS[t.tool]?.short || t.tool),
      h("td", {}, statusBadge(t.status)),
      h("td", { class: "files" }, (t.input_files || []).map(basename).join(" + ")),
      h("td", { class: "summary" }, taskSummary(t)),
      h("td", { class: "when" }, timeEl(t.created_at)));
    tr.addEventListener("click", (e) => {
      if (e.target.closest("a")) return;
      if (getSelection()?.toString()) return;
      location.hash = `#/tasks/${t.uid}`;
    });
    return tr;
  });
  return h("div", {},
    h("div", { class: "table-wrap" }, h("table", { class: "tasks" },
      h("caption", { class: "visually-hidden" }, "Tasks, newest first"),
      h("thead", {}, h("tr", {},
        ["Task", "Tool", "Status", "Files", "Result", "Created"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows))),
    pager);
}

// ---------------------------------------------------------------- settings

async function viewSettings(root, _args, signal) {
  setTitle("Settings");
  const schema = await loadSchema();
  const current = await getAllSettings(schema, signal);
  const tools = TOOL_ORDER.filter((t) => schema.settings[t])
    .concat(Object.keys(schema.settings).filter((t) => !TOOL_ORDER.includes(t)));
  fill(root,
    h("h1", { tabindex: "-1" }, "Settings"),
    h("p", { class: "lead" }, "The defaults each tool starts from: a request that leaves a parameter out uses these. ",
      "They are shared by every process and survive restarts."),
    h("div", { class: "settings-grid" }, tools.map((tool) => settingsForm(tool, schema.settings[tool], current[tool]))));
}

function settingsForm(tool, fields, values) {
  let stored = { ...values };
  const headingId = `settings-${tool}-title`;
  const editor = paramEditor(fields, stored, stored, { idPrefix: `s-${tool}`, defaultWord: "saved" });
  const status = h("p", { class: "save-status", role: "status" });
  const errors = h("div", { class: "alert error", role: "alert", hidden: true });
  const save = h("button", { type: "submit", class: "primary" },
    "Save", h("span", { class: "visually-hidden" }, ` ${tool} settings`));
  const revert = h("button", { type: "button", class: "secondary", onclick: () => {
    editor.set(stored);
    errors.hidden = true;
    status.textContent = "Changes undone.";
  } }, "Undo changes");
  const form = h("form", { class: "settings card", novalidate: true, "aria-labelledby": headingId },
    h("h2", { id: headingId }, toolLabel(tool)),
    editor.root, errors,
    h("div", { class: "row" }, save, revert), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.hidden = true;
    status.textContent = "";
    status.classList.remove("bad");
    const bad = editor.validate();
    if (bad) {
      bad.focus();
      status.classList.add("bad");
      status.textContent = "Not saved: check the highlighted fields.";
      return;
    }
    save.disabled = true;
    try {
      const body = await api(`api/v1/settings/${tool}`, { method: "PUT", json: editor.read() });
      stored = { ...body.params };
      // the new values are the new defaults
      for (const [name, c] of editor.controls) {
        c.def = stored[name];
        c.defText.textContent = `saved ${showValue(c.def)}`;
      }
      editor.set(stored);
      status.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      for (const e of err.errors) if (e.loc.length) editor.setError(String(e.loc[0]), e.msg);
      fill(errors, h("strong", {}, "Not saved: "), err.message);
      errors.hidden = false;
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

// ---------------------------------------------------------------- webhooks

async function viewWebhooks(root, _args, signal) {
  setTitle("Webhooks");
  const listHolder = h("div", {});
  const listStatus = h("p", { class: "visually-hidden", role: "status" });

  const url = h("input", { id: "hook-url", name: "url", type: "url", required: true,
    placeholder: "https://example.com/callback", autocomplete: "url", "aria-describedby": "hook-url-err" });
  const secret = h("input", { id: "hook-secret", name: "secret", type: "password", autocomplete: "new-password",
    "aria-describedby": "hook-secret-hint" });
  const urlError = h("p", { class: "field-error", id: "hook-url-err", hidden: true });
  const formErrors = h("div", { class: "alert error", role: "alert", hidden: true });
  const form = h("form", { class: "card hook-form", novalidate: true, "aria-labelledby": "add-hook-title" },
    h("h2", { id: "add-hook-title" }, "Add a webhook"),
    h("div", { class: "field" }, h("label", { for: "hook-url" }, "URL"), url, urlError),
    h("div", { class: "field" }, h("label", { for: "hook-secret" }, "Secret ", h("span", { class: "muted" }, "(optional)")),
      secret,
      h("p", { class: "hint", id: "hook-secret-hint" },
        "With a secret, each POST carries X-Webhook-Signature: sha256=<HMAC of the body>. It is never shown again.")),
    formErrors,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Add webhook")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formErrors.hidden = true;
    urlError.hidden = true;
    url.removeAttribute("aria-invalid");
    const value = url.value.trim();
    if (!/^https?:\/\/[^/?#\s]+/i.test(value)) {
      urlError.textContent = "Enter an http:// or https:// URL.";
      urlError.hidden = false;
      url.setAttribute("aria-invalid", "true");
      url.focus();
      return;
    }
    const body = { url: value };
    if (secret.value) body.secret = secret.value;
    try {
      const hook = await api("api/v1/webhooks", { method: "POST", json: body });
      form.reset();
      await refresh();
      listStatus.textContent = `Added ${hook.id}.`;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fill(formErrors, h("strong", {}, "Not added: "), err.message);
      formErrors.hidden = false;
    }
  });

  async function refresh() {
    const hooks = await api("api/v1/webhooks", { signal });
    fill(listHolder, hooksTable(hooks));
  }

  function hooksTable(hooks) {
    if (!hooks.length) return h("p", { class: "muted empty" }, "No webhooks registered.");
    const rows = [];
    for (const hook of hooks) {
      const deliveriesRow = h("tr", { class: "deliveries-row", hidden: true },
        h("td", { colspan: "4" }, h("div", { class: "deliveries" })));
      const deliveriesButton = h("button", { type: "button", class: "secondary small", "aria-expanded": "false",
        "aria-label": `Deliveries of ${hook.url}`, onclick: async () => {
          const open = deliveriesRow.hidden;
          deliveriesRow.hidden = !open;
          deliveriesButton.setAttribute("aria-expanded", String(open));
          if (open) await showDeliveries(hook, deliveriesRow.querySelector(".deliveries"));
        } }, "Deliveries");
      const confirmBox = h("span", { class: "confirm", hidden: true });
      const deleteButton = h("button", { type: "button", class: "danger small",
        "aria-label": `Delete ${hook.url}`, onclick: () => {
          deleteButton.hidden = true;
          confirmBox.hidden = false;
          confirmBox.querySelector("button").focus();
        } }, "Delete");
      confirmBox.append(
        h("button", { type: "button", class: "danger small", "aria-label": `Yes, delete ${hook.url}`,
          onclick: async () => {
            try {
              await api(`api/v1/webhooks/${encodeURIComponent(hook.id)}`, { method: "DELETE" });
              listStatus.textContent = `Deleted ${hook.id}.`;
            } catch (err) {
              if (!(err instanceof ApiError) || err.status !== 404) {
                listStatus.textContent = `Not deleted: ${err.message}`;
              }
            }
            await refresh();
            form.querySelector("input").focus();
          } }, "Yes, delete"),
        " ",
        h("button", { type: "button", class: "secondary small", onclick: () => {
          confirmBox.hidden = true;
          deleteButton.hidden = false;
          deleteButton.focus();
        } }, "Cancel"));
      rows.push(h("tr", { dataset: { id: hook.id } },
        h("td", { class: "url" }, hook.url),
        h("td", {}, h("code", {}, hook.id)),
        h("td", { class: "when" }, timeEl(hook.created_at)),
        h("td", { class: "row-actions" }, deliveriesButton, " ", deleteButton, confirmBox)));
      rows.push(deliveriesRow);
    }
    return h("div", { class: "table-wrap" }, h("table", { class: "hooks" },
      h("caption", { class: "visually-hidden" }, "Registered webhooks"),
      h("thead", {}, h("tr", {}, ["URL", "ID", "Added", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)));
  }

  async function showDeliveries(hook, holder) {
    fill(holder, loading("Loading deliveries…"));
    let list;
    try {
      list = await api(`api/v1/webhooks/${encodeURIComponent(hook.id)}/deliveries`, { signal });
    } catch (err) {
      fill(holder, errorBox(err.message));
      return;
    }
    const again = h("button", { type: "button", class: "link-button", onclick: () => showDeliveries(hook, holder) }, "Refresh");
    if (!list.length) {
      fill(holder, h("p", { class: "muted" }, "No deliveries yet: one is made each time a task ends. ", again));
      return;
    }
    fill(holder, h("table", { class: "deliveries-table" },
      h("caption", {}, `Recent deliveries to ${hook.url} `, again),
      h("thead", {}, h("tr", {}, ["Status", "Event", "Task", "Attempts", "Answer", "When"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, list.map((d) => h("tr", {},
        h("td", {}, h("span", { class: `badge delivery-${d.status}` }, d.status)),
        h("td", {}, d.event),
        h("td", {}, h("a", { href: `#/tasks/${d.task_uid}` }, h("code", {}, d.task_uid.slice(0, 8)))),
        h("td", { class: "num" }, String(d.attempts)),
        h("td", {}, d.response_code ? `HTTP ${d.response_code}` : "", d.error ? h("span", { class: "muted" }, ` ${d.error}`) : ""),
        h("td", { class: "when" }, timeEl(d.delivered_at || d.created_at),
          d.status === "pending" && d.next_attempt_at ? h("span", { class: "muted" }, " · next ", timeEl(d.next_attempt_at)) : null))))));
  }

  fill(root,
    h("h1", { tabindex: "-1" }, "Webhooks"),
    h("p", { class: "lead" }, "Each task that ends (done or error) is POSTed as JSON to every URL here, with retries until it is answered with a 2xx."),
    form,
    h("section", { "aria-labelledby": "hooks-title" }, h("h2", { id: "hooks-title" }, "Registered"), listStatus, listHolder));
  await refresh();
}

// ---------------------------------------------------------------- start

// the skip link moves focus without touching the hash (the hash is the router's)
document.querySelector(".skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", route);
route();
