// AeroVision web UI: talking to the API (same origin, relative URLs, so the UI
// also works under a proxy's path prefix).

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

/** An API route as the server names it ("/api/v1/settings/template") relative to the page. */
export const relative = (route) => route.replace(/^\/+/, "");

let toolsPromise = null;

/**
 * GET /api/v1/tools, once per page load: every tool with its inputs, params
 * schema, defaults, presets, "found" rule and result line, and max_chain_steps.
 */
export function tools() {
  if (!toolsPromise) {
    toolsPromise = api("api/v1/tools");
    toolsPromise.catch(() => {
      toolsPromise = null; // try again on the next page
    });
  }
  return toolsPromise;
}
