// AeroVision web UI: the form pieces built from a tool's entry in GET /api/v1/tools —
// the parameter editor (from params_schema), the presets bar and the file drops (from inputs).
import { fill, h, showValue } from "./dom.js";
import { labelOf } from "./registry.js";

// ---------------------------------------------------------------- values and checks

const STRUCTURED = new Set(["array", "object"]);

/** A value of a field, typed for JSON (settings, chain steps); null when empty. */
export function typedValue(field, raw) {
  if (field.type === "boolean") return Boolean(raw);
  if (raw === "" || raw === null || raw === undefined) {
    return field.type === "string" && !field.nullable ? "" : null;
  }
  if (field.type === "integer") return Number.parseInt(raw, 10);
  if (field.type === "number") return Number.parseFloat(raw);
  if (STRUCTURED.has(field.type)) {
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }
  return String(raw);
}

function numberProblem(field, value) {
  if (!Number.isFinite(value)) return "Enter a number.";
  if (field.type === "integer" && !Number.isInteger(value)) return "Enter a whole number.";
  if (field.min !== null && value < field.min) return `Must be at least ${field.min}.`;
  if (field.max !== null && value > field.max) return `Must be at most ${field.max}.`;
  if (field.exclusiveMin !== null && value <= field.exclusiveMin) return `Must be greater than ${field.exclusiveMin}.`;
  if (field.exclusiveMax !== null && value >= field.exclusiveMax) return `Must be less than ${field.exclusiveMax}.`;
  return "";
}

/** Client-side check of one field against the schema (type, range); "" when fine. */
export function checkValue(field, raw) {
  if (field.type === "boolean" || field.type === "enum" || field.type === "string") return "";
  if (raw === "" || raw === null || raw === undefined) return field.nullable ? "" : "Enter a value.";
  if (STRUCTURED.has(field.type)) {
    try {
      JSON.parse(raw);
      return "";
    } catch {
      return "Enter JSON.";
    }
  }
  return numberProblem(field, Number(raw));
}

/** "0.1–1.0", "> 0 and ≤ 1", "" */
export function rangeText(field) {
  const lo = field.min ?? field.exclusiveMin;
  const hi = field.max ?? field.exclusiveMax;
  if (lo === null && hi === null) return "";
  if (field.exclusiveMin !== null || field.exclusiveMax !== null) {
    const parts = [];
    if (lo !== null) parts.push(`${field.exclusiveMin !== null ? ">" : "≥"} ${lo}`);
    if (hi !== null) parts.push(`${field.exclusiveMax !== null ? "<" : "≤"} ${hi}`);
    return parts.join(" and ");
  }
  if (lo !== null && hi !== null) return `${lo}–${hi}`;
  return lo !== null ? `≥ ${lo}` : `≤ ${hi}`;
}

// ---------------------------------------------------------------- parameter editor

/** The control of one field: enums are selects, booleans checkboxes, numbers have their range. */
function controlFor(field, id, describedBy) {
  const common = { id, name: field.name, "aria-describedby": describedBy };
  if (field.type === "enum") {
    return h("select", common,
      field.nullable ? h("option", { value: "" }, "(none)") : null,
      field.options.map((o) => h("option", { value: o }, o)));
  }
  if (field.type === "boolean") return h("input", { ...common, type: "checkbox" });
  if (field.type === "integer" || field.type === "number") {
    return h("input", {
      ...common, type: "number", required: !field.nullable,
      inputmode: field.type === "integer" ? "numeric" : "decimal",
      step: field.type === "integer" ? "1" : "any",
      min: field.min ?? field.exclusiveMin ?? null,
      max: field.max ?? field.exclusiveMax ?? null,
    });
  }
  return h("input", { ...common, type: "text", spellcheck: "false" });
}

/** One field: label, API name, control, range and default hint, error line. */
function fieldRow(field, def, { idPrefix, defaultWord, compact }) {
  const id = `${idPrefix}-${field.name}`;
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  const input = controlFor(field, id, `${hintId} ${errId}`);
  const range = rangeText(field);
  const defText = h("span", { class: "def" }, def === undefined ? "" : `${defaultWord} ${showValue(def)}`);
  const hint = h("p", { class: "hint", id: hintId },
    range ? h("span", { class: "range" }, range) : null,
    range && def !== undefined ? " · " : null,
    defText,
    !compact && (range || def !== undefined) && field.description ? " — " : null,
    compact ? null : field.description);
  const error = h("p", { class: "field-error", id: errId, hidden: true });
  const label = h("label", { for: id, title: compact ? field.description : null }, field.label);
  const apiName = h("code", { class: "api-name", title: "Name in the API" }, field.name);
  const kind = field.type === "enum" || field.type === "boolean" ? field.type : STRUCTURED.has(field.type) ? "json" : field.type;
  const wrap = h("div", { class: `field field-${kind}`, dataset: { name: field.name } },
    field.type === "boolean"
      ? h("div", { class: "check" }, input, label, apiName)
      : [h("div", { class: "label-row" }, label, apiName), input],
    hint, error);
  return { field, input, error, wrap, def, defText };
}

const rawValue = (c) => (c.field.type === "boolean" ? c.input.checked : c.input.value);

function showRaw(c, value) {
  if (c.field.type === "boolean") c.input.checked = Boolean(value);
  else if (value === null || value === undefined) c.input.value = "";
  else c.input.value = typeof value === "object" ? JSON.stringify(value) : String(value);
}

/**
 * Form controls for a tool's parameters (fields from fieldsOf(tool)).
 * values: starting values; defaults: what "default" means (the current settings).
 */
export function paramEditor(fields, values, defaults, { idPrefix, defaultWord = "default", compact = false }) {
  const root = h("div", { class: "params" });
  const controls = new Map();
  const editor = { root, controls, onchange: null };

  function markChanged(name) {
    const c = controls.get(name);
    if (c.def === undefined) return;
    const current = typedValue(c.field, rawValue(c));
    c.wrap.classList.toggle("changed", JSON.stringify(current) !== JSON.stringify(c.def));
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
    const message = checkValue(controls.get(name).field, rawValue(controls.get(name)));
    setError(name, message);
    return message;
  }

  for (const field of fields) {
    const c = fieldRow(field, defaults?.[field.name], { idPrefix, defaultWord, compact });
    controls.set(field.name, c);
    root.append(c.wrap);
    const onChange = () => {
      markChanged(field.name);
      if (!c.error.hidden) validateOne(field.name);
      editor.onchange?.();
    };
    c.input.addEventListener("input", onChange);
    c.input.addEventListener("change", onChange);
  }

  Object.assign(editor, {
    set(newValues) {
      for (const [name, value] of Object.entries(newValues || {})) {
        const c = controls.get(name);
        if (!c) continue;
        showRaw(c, value);
        markChanged(name);
        setError(name, "");
      }
    },
    /** {name: typed value} for JSON bodies */
    read: () => Object.fromEntries([...controls].map(([name, c]) => [name, typedValue(c.field, rawValue(c))])),
    /** {name: string} for multipart form fields */
    readStrings: () => Object.fromEntries([...controls].map(([name, c]) =>
      [name, c.field.type === "boolean" ? String(c.input.checked) : c.input.value.trim()])),
    /** Marks every invalid field; returns the first invalid control or null. */
    validate() {
      let first = null;
      for (const name of controls.keys()) {
        if (validateOne(name) && !first) first = controls.get(name).input;
      }
      return first;
    },
    /** New saved values: they become what "default" means. */
    setDefaults(saved, word = defaultWord) {
      for (const [name, c] of controls) {
        c.def = saved[name];
        c.defText.textContent = c.def === undefined ? "" : `${word} ${showValue(c.def)}`;
      }
    },
    setError,
    clearErrors() {
      for (const name of controls.keys()) setError(name, "");
    },
  });
  editor.set(values);
  return editor;
}

// ---------------------------------------------------------------- presets

const describeValues = (values, sep) => Object.entries(values).map(([k, v]) => `${k}=${v}`).join(sep);

/** The tool's presets as buttons; onApply(params) gets the preset's params. Null when it has none. */
export function presetBar(tool, onApply, { compact = false } = {}) {
  const presets = tool?.presets || [];
  if (!presets.length) return null;
  const status = h("p", { class: "preset-status", role: "status" });
  const buttons = presets.map((preset) => {
    const button = h("button", {
      type: "button", class: "preset", "aria-pressed": "false",
      title: describeValues(preset.params, " "),
      dataset: { preset: preset.name },
      onclick: () => {
        onApply(preset.params);
        for (const b of buttons) b.setAttribute("aria-pressed", String(b === button));
        status.textContent = `Applied “${preset.name}”: ${describeValues(preset.params, ", ")}.`;
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

// ---------------------------------------------------------------- file drops

const sizeText = (bytes) => (bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB`
  : `${Math.max(1, Math.round(bytes / 1024))} KB`);

/** The chosen files' previews (pictures the browser can show) and names. */
function previewer(holder) {
  let urls = [];
  return (files) => {
    for (const url of urls) URL.revokeObjectURL(url);
    urls = [];
    fill(holder, files.map((file) => {
      const showable = /^image\/(png|jpeg|bmp|gif|webp)$/.test(file.type);
      const url = showable ? URL.createObjectURL(file) : null;
      if (url) urls.push(url);
      return [
        url ? h("img", { src: url, alt: `Preview of ${file.name}`,
          onerror: (e) => e.target.replaceWith(h("span", { class: "no-preview" }, "no preview")) }) : null,
        h("p", { class: "file-name" }, file.name, h("span", { class: "muted" }, ` · ${sizeText(file.size)}`)),
      ];
    }));
  };
}

function acceptsAll(files, accept) {
  if (!accept.length) return true;
  return files.every((f) => accept.some((ending) => f.name.toLowerCase().endsWith(ending.toLowerCase())));
}

/** Files dropped on `zone` become the file input's (one unless it takes several). */
function takeDrops(zone, input) {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    const dropped = [...(e.dataTransfer?.files || [])].slice(0, input.multiple ? undefined : 1);
    if (!dropped.length) return;
    const transfer = new DataTransfer();
    for (const file of dropped) transfer.items.add(file);
    input.files = transfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
}

/** A labelled file input for one of a tool's inputs that also takes dropped files, with a preview. */
export function fileDrop(slot) {
  const id = `file-${slot}`;
  const input = h("input", { type: "file", id, "aria-describedby": `${id}-help ${id}-err` });
  const title = h("span", { class: "drop-title" });
  const mark = h("span", { class: "required-mark" });
  const code = h("code", { class: "api-name", title: "Name in the API" });
  const help = h("span", { class: "drop-help", id: `${id}-help` });
  const preview = h("div", { class: "preview" });
  const error = h("p", { class: "field-error", id: `${id}-err`, hidden: true });
  const zone = h("div", { class: "drop" },
    h("div", { class: "label-row" }, h("label", { for: id, class: "drop-label" }, title), mark, code),
    help, input,
    h("p", { class: "drop-hint", "aria-hidden": "true" }, "…or drop a file here"),
    preview, error);
  const showPreview = previewer(preview);
  let spec = null;
  const chosen = () => [...(input.files || [])];

  function setError(message) {
    error.textContent = message;
    error.hidden = !message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
    zone.classList.toggle("invalid", Boolean(message));
  }

  input.addEventListener("change", () => {
    setError("");
    showPreview(chosen());
  });
  takeDrops(zone, input);

  return {
    root: zone,
    get name() {
      return input.name;
    },
    /** Show this drop as the input `next` of GET /api/v1/tools; keeps the file when it still fits. */
    configure(next) {
      spec = next;
      input.name = next.name;
      input.accept = (next.accept || []).join(",");
      input.required = next.required !== false;
      input.multiple = Boolean(next.many);
      title.textContent = labelOf(next.name, { description: next.help });
      mark.textContent = input.required ? "required" : "optional";
      code.textContent = next.name;
      help.textContent = next.help || "";
      if (!acceptsAll(chosen(), next.accept || []) || (!next.many && chosen().length > 1)) {
        input.value = "";
        showPreview([]);
      }
      setError("");
    },
    files: chosen,
    validate() {
      if (input.required && !chosen().length) {
        setError(spec?.many ? "Choose one or more files." : "Choose a file.");
        return input;
      }
      setError("");
      return null;
    },
    setError,
  };
}
