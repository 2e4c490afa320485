// AeroVision web UI: talking to the API (same origin, relative URLs) and
// reading the forms' fields, ranges and enums from /openapi.json.

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: no answer)
   * @param {string} message one readable line
   * @param {Array<{loc: Array<string|number>, msg: string, field: string|null}>} errors
   */
  constructor(status, message, errors = []) {
    super(message);
    this.status = status;
    this.errors = errors;
  }
}

/** One readable line per FastAPI validation error, keeping its loc. */
export function validationErrors(detail) {
  if (!Array.isArray(detail)) return [];
  return detail.map((item) => {
    const loc = Array.isArray(item.loc) ? item.loc : [];
    const path = loc[0] === "body" || loc[0] === "query" || loc[0] === "path" ? loc.slice(1) : loc;
    const field = path.length ? String(path[path.length - 1]) : null;
    let msg = String(item.msg ?? "invalid value");
    // chain step messages already start with "step N (tool): field: ..."
    const named = path.length && !/^step \d+/.test(msg) ? `${path.join(".")}: ${msg}` : msg;
    return { loc: path, field, msg, text: named };
  });
}

async function errorFrom(response) {
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (body && Array.isArray(body.detail)) {
    const errors = validationErrors(body.detail);
    return new ApiError(response.status, errors.map((e) => e.text).join("\n"), errors);
  }
  if (body && typeof body.detail === "string") {
    return new ApiError(response.status, body.detail);
  }
  if (response.status === 401) {
    return new ApiError(401, "This server requires an API key (AEROVISION_API_KEYS is set).");
  }
  const snippet = text.trim().replace(/\s+/g, " ").slice(0, 200);
  return new ApiError(
    response.status,
    `The server answered ${response.status} ${response.statusText}${snippet ? `: ${snippet}` : ""}`,
  );
}

/**
 * fetch() a relative API path; JSON in and out. Throws ApiError with the
 * server's own message on any non-2xx answer or when the server cannot be reached.
 */
export async function api(path, { method = "GET", json, body, signal } = {}) {
  const init = { method, signal, headers: { Accept: "application/json" } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    if (exc && exc.name === "AbortError") throw exc;
    throw new ApiError(0, "Cannot reach the server. Is it running?");
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  return response.json();
}

// ---------------------------------------------------------------- schema

const FILE_MARKERS = ["contentMediaType", "format"];

function resolve(spec, schema) {
  let current = schema;
  for (let i = 0; current && current.$ref && i < 10; i++) {
    const name = current.$ref.split("/").pop();
    current = spec.components?.schemas?.[name];
  }
  return current || {};
}

function isFile(prop) {
  return (
    FILE_MARKERS.some((k) => prop[k] === "application/octet-stream" || prop[k] === "binary") ||
    (prop.type === "string" && prop.format === "binary")
  );
}

/** A property of a params schema as a form field description. */
function fieldFrom(name, prop) {
  const variants = prop.anyOf || prop.oneOf || [prop];
  const main = variants.find((v) => v.type && v.type !== "null") || variants[0] || {};
  const field = {
    name,
    title: prop.title || name,
    description: prop.description || main.description || "",
    type: main.type || "string",
    options: null,
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

function paramsOf(spec, schema) {
  const resolved = resolve(spec, schema);
  const props = resolved.properties || {};
  const inputs = [];
  const params = [];
  for (const [name, raw] of Object.entries(props)) {
    const prop = resolve(spec, raw);
    if (isFile(prop)) {
      inputs.push({ name, title: prop.title || name, description: prop.description || "" });
    } else {
      params.push(fieldFrom(name, prop));
    }
  }
  return { inputs, params, required: resolved.required || [] };
}

let schemaPromise = null;

/**
 * What this server offers, read from /openapi.json:
 *   match:    {tool: {inputs: [{name,title,description}], params: [field]}} per POST /api/v1/match/<tool>
 *   settings: {tool: [field]} per PUT /api/v1/settings/<tool>
 */
export function loadSchema() {
  if (!schemaPromise) {
    schemaPromise = api("openapi.json").then((spec) => {
      const match = {};
      const settings = {};
      for (const [path, item] of Object.entries(spec.paths || {})) {
        let m = /^\/api\/v1\/match\/([a-z0-9_]+)$/.exec(path);
        if (m && item.post) {
          const content = item.post.requestBody?.content || {};
          const body = content["multipart/form-data"] || Object.values(content)[0] || {};
          match[m[1]] = paramsOf(spec, body.schema || {});
          continue;
        }
        m = /^\/api\/v1\/settings\/([a-z0-9_]+)$/.exec(path);
        if (m && item.put) {
          const content = item.put.requestBody?.content || {};
          const body = content["application/json"] || Object.values(content)[0] || {};
          settings[m[1]] = paramsOf(spec, body.schema || {}).params;
        }
      }
      return { match, settings, version: spec.info?.version || "" };
    });
    schemaPromise.catch(() => {
      schemaPromise = null; // try again on the next page
    });
  }
  return schemaPromise;
}

/** A value of a field, typed for JSON (settings, chain steps); null when empty. */
export function typedValue(field, raw) {
  if (field.type === "boolean") return Boolean(raw);
  if (raw === "" || raw === null || raw === undefined) return null;
  if (field.type === "integer") return Number.parseInt(raw, 10);
  if (field.type === "number") return Number.parseFloat(raw);
  return String(raw);
}

/** Client-side check of one field against the schema's range; "" when fine. */
export function checkValue(field, raw) {
  if (field.type === "boolean" || field.type === "enum") return "";
  if (raw === "" || raw === null || raw === undefined) return "Enter a value.";
  const value = Number(raw);
  if (field.type === "integer" || field.type === "number") {
    if (!Number.isFinite(value)) return "Enter a number.";
    if (field.type === "integer" && !Number.isInteger(value)) return "Enter a whole number.";
    if (field.min !== null && value < field.min) return `Must be at least ${field.min}.`;
    if (field.max !== null && value > field.max) return `Must be at most ${field.max}.`;
    if (field.exclusiveMin !== null && value <= field.exclusiveMin)
      return `Must be greater than ${field.exclusiveMin}.`;
    if (field.exclusiveMax !== null && value >= field.exclusiveMax)
      return `Must be less than ${field.exclusiveMax}.`;
  }
  return "";
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
