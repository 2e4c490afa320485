// AeroVision web UI: what the tools are, read from GET /api/v1/tools (the server's
// tool registry). Nothing here names a tool: a tool the server adds shows up by itself.
import { api, relative, tools } from "./api.js";

/** The tools in the order to show them, by name, and the chain's step limit. */
export async function loadRegistry() {
  const answer = await tools();
  const list = answer.tools || [];
  const byName = new Map(list.map((t) => [t.name, t]));
  return {
    list,
    maxChainSteps: answer.max_chain_steps ?? 10,
    get: (name) => byName.get(name) || null,
    title: (name) => byName.get(name)?.title || name,
    chainable: () => list.filter((t) => t.chainable),
    withSettings: () => list.filter((t) => t.settings),
  };
}

/** A tool whose request is a list of other tools' steps (its params are {steps: [{tool, params}]}). */
export function takesSteps(tool) {
  const steps = tool?.params_schema?.properties?.steps;
  return Boolean(steps && steps.type === "array" && Object.keys(tool.params_schema.properties).length === 1);
}

/** The values a tool's form starts from: its current settings when it has some, else its defaults. */
export async function startingValues(tool, signal) {
  if (!tool.settings) return { ...(tool.defaults || {}) };
  const body = await api(relative(tool.settings), { signal });
  return body.params;
}

/** startingValues of each tool of the list, by name. */
export async function allStartingValues(list, signal) {
  const entries = await Promise.all(list.map(async (t) => [t.name, await startingValues(t, signal)]));
  return Object.fromEntries(entries);
}

// ---------------------------------------------------------------- labels

/** pydantic's automatic title of a field: "max_results" → "Max Results". */
const autoTitle = (name) =>
  name.replace(/[A-Za-z]+/g, (w) => w[0].toUpperCase() + w.slice(1).toLowerCase()).replace(/_/g, " ");

/**
 * A readable label for a field or a result key: the schema's title when the tool
 * gave one, else the name in words, first letter capitalised, and words the
 * description writes in capitals (ICP, PPF, …) kept so: "icp_tolerance" → "ICP tolerance".
 */
export function labelOf(name, { title, description } = {}) {
  if (title && title !== autoTitle(name)) return title;
  const capitals = new Set((description || "").match(/\b[A-Z][A-Z0-9]+\b/g) || []);
  const words = name.split("_").filter(Boolean).map((w) => (capitals.has(w.toUpperCase()) ? w.toUpperCase() : w));
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---------------------------------------------------------------- params schema → form fields

function resolve(root, schema) {
  let current = schema;
  for (let i = 0; current && current.$ref && i < 10; i++) {
    const name = current.$ref.split("/").pop();
    current = root.$defs?.[name] || root.definitions?.[name];
  }
  return current || {};
}

/** One property of a params schema as a form field description. */
function fieldFrom(root, name, prop, required) {
  const resolved = resolve(root, prop);
  const variants = (resolved.anyOf || resolved.oneOf || [resolved]).map((v) => resolve(root, v));
  const main = variants.find((v) => (v.type && v.type !== "null") || v.enum) || variants[0] || {};
  const description = prop.description || resolved.description || main.description || "";
  const field = {
    name,
    label: labelOf(name, { title: prop.title || resolved.title, description }),
    description,
    type: main.type || (Array.isArray(main.enum) ? "enum" : "string"),
    options: null,
    nullable: variants.some((v) => v.type === "null"),
    required,
    min: main.minimum ?? null,
    max: main.maximum ?? null,
    exclusiveMin: main.exclusiveMinimum ?? null,
    exclusiveMax: main.exclusiveMaximum ?? null,
  };
  if (Array.isArray(main.enum)) {
    field.type = "enum";
    field.options = main.enum.map(String);
  }
  return field;
}

/** The form fields of a tool's params, from its params_schema, in the schema's order. */
export function fieldsOf(tool) {
  const schema = tool?.params_schema || {};
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(([name, prop]) =>
    fieldFrom(schema, name, prop, required.has(name)));
}

// ---------------------------------------------------------------- result line and "found"

const PLACEHOLDER = /\{(\w+)(?::\.(\d+)([fg])|#([^|{}]*)\|([^{}]*))?\}/g;

/**
 * A tool's result_line with a result's values, as the server's Summary.render
 * writes it: "{field}", "{field:.3f}", "{field:.4g}", "{field#match|matches}" (the count
 * and its noun: "1 match", "3 matches"); a missing or null value is "-".
 */
export function formatLine(template, data) {
  return String(template || "").replace(PLACEHOLDER, (_, name, digits, kind, singular, plural) => {
    const value = data && Object.hasOwn(data, name) ? data[name] : null;
    if (singular !== undefined) {
      const shown = value === null || value === undefined ? "-" : pythonStr(value);
      return `${shown} ${value === 1 ? singular : plural}`;
    }
    if (value === null || value === undefined) return "-";
    if (digits !== undefined && (typeof value === "number" || typeof value === "boolean")) {
      return formatPython(Number(value), Number(digits), kind);
    }
    return pythonStr(value);
  });
}

/** The one-line result of a done task or chain step ("" for a tool the server does not list). */
export function resultLine(tool, data) {
  return tool ? formatLine(tool.result_line, data || {}) : "";
}

/** The tool's "found" rule ({field, above} or {field, equals}) applied to a result. */
export function isFound(tool, data) {
  const rule = tool?.found;
  if (!rule) return false;
  const value = data && Object.hasOwn(data, rule.field) ? data[rule.field] : null;
  if (rule.equals !== undefined && rule.equals !== null) return sameValue(value, rule.equals);
  const number = asFloat(value);
  return number !== null && number > (Number(rule.above) || 0);
}

function asFloat(value) {
  if (typeof value === "number") return Number.isNaN(value) ? null : value;
  if (typeof value === "boolean") return Number(value);
  if (typeof value === "string" && value.trim() !== "") {
    const n = Number(value);
    return Number.isNaN(n) ? null : n;
  }
  return null;
}

function sameValue(a, b) {
  const numeric = (v) => typeof v === "number" || typeof v === "boolean";
  if (numeric(a) && numeric(b)) return Number(a) === Number(b);
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    return JSON.stringify(a) === JSON.stringify(b);
  }
  return a === b;
}

// ---------------------------------------------------------------- Python's number formats

/** Python's str() of a JSON value (a whole number is shown as an int: JSON cannot tell 1.0 from 1). */
function pythonStr(value) {
  return typeof value === "string" ? value : pythonLiteral(value);
}

/** Python's repr() of a JSON value: 'text', True, None, [1, 2], {'a': 1}. */
function pythonLiteral(value) {
  if (value === null || value === undefined) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "number") return pythonRepr(value);
  if (typeof value === "string") {
    const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
    const escaped = value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\t/g, "\\t");
    return quote + (quote === "'" ? escaped.replace(/'/g, "\\'") : escaped) + quote;
  }
  if (Array.isArray(value)) return `[${value.map(pythonLiteral).join(", ")}]`;
  return `{${Object.entries(value).map(([k, v]) => `${pythonLiteral(k)}: ${pythonLiteral(v)}`).join(", ")}}`;
}

function pythonRepr(x) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x < 0 ? "-inf" : "inf";
  if (Number.isInteger(x) && Math.abs(x) <= Number.MAX_SAFE_INTEGER) return String(x);
  const [mantissa, e] = x.toExponential().split("e"); // the shortest digits that read back as x
  const exp = Number(e);
  if (exp >= -4 && exp < 16) return fixedFrom(x < 0 ? "-" : "", mantissa.replace(/[-.]/g, ""), exp, true);
  return `${mantissa}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
}

/** digits d1d2d3… meaning d1.d2d3… × 10^exp, written without an exponent. */
function fixedFrom(sign, digits, exp, keepPointZero = false) {
  let whole;
  let frac;
  if (exp >= 0) {
    const padded = digits.padEnd(exp + 1, "0");
    whole = padded.slice(0, exp + 1);
    frac = padded.slice(exp + 1);
  } else {
    whole = "0";
    frac = "0".repeat(-exp - 1) + digits;
  }
  frac = frac.replace(/0+$/, "");
  if (!frac && keepPointZero) frac = "0";
  return `${sign}${whole}${frac ? `.${frac}` : ""}`;
}

/** The exact decimal digits of |x| and where the point is: {digits: "12345", point: 2} = 12.345. */
function exactDecimal(x) {
  const a = Math.abs(x);
  if (a >= 1e21) return { digits: BigInt(a).toString(), point: BigInt(a).toString().length };
  const [whole, frac = ""] = a.toFixed(100).split(".");
  return { digits: whole + frac.replace(/0+$/, ""), point: whole.length };
}

/** The first `cut` digits of `digits`, rounded half to even on the rest (Python's rounding). */
function roundDigits(digits, cut) {
  const padded = digits.padEnd(cut, "0");
  const kept = padded.slice(0, cut);
  const rest = padded.slice(cut);
  const tail = rest.slice(1);
  const last = kept ? Number(kept[kept.length - 1]) : 0;
  const up = rest[0] > "5" || (rest[0] === "5" && (/[1-9]/.test(tail) || last % 2 === 1));
  if (!up) return kept;
  const bumped = (BigInt(kept || "0") + 1n).toString();
  return bumped.padStart(kept.length, "0");
}

/** format(x, ".{p}f") or format(x, ".{p}g") as Python writes it. */
export function formatPython(x, p, kind) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x < 0 ? "-inf" : "inf";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  const { digits, point } = exactDecimal(x);
  if (kind === "f") {
    const rounded = roundDigits(digits, point + p);
    const whole = rounded.slice(0, rounded.length - p).replace(/^0+(?=\d)/, "") || "0";
    return `${sign}${whole}${p ? `.${rounded.slice(rounded.length - p)}` : ""}`;
  }
  const precision = p || 1;
  if (x === 0) return `${sign}0`;
  const first = digits.search(/[1-9]/);
  let exp = point - first - 1;
  let rounded = roundDigits(digits, first + precision).replace(/^0+/, "");
  if (rounded.length > precision) exp += 1; // 9.9995 → 10.00
  rounded = rounded.slice(0, precision);
  if (exp >= -4 && exp < precision) return fixedFrom(sign, rounded, exp);
  const frac = rounded.slice(1).replace(/0+$/, "");
  return `${sign}${rounded[0]}${frac ? `.${frac}` : ""}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
}
