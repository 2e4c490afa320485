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
    return new ApiError(401, "This server needs credentials: sign in.");
  }
  const snippet = text.trim().replace(/\s+/g, " ").slice(0, 200);
  return new ApiError(
    response.status,
    `The server answered ${response.status} ${response.statusText}${snippet ? `: ${snippet}` : ""}`,
  );
}

// ---------------------------------------------------------------- credentials
// /health says which mode the server runs ("auth": off | keys | accounts). With keys or
// accounts every API call and file download carries `Authorization: Bearer <secret>`,
// where the secret is the static key (keys) or this browser's session token (accounts,
// made at sign-in). Only that secret is kept, in sessionStorage (gone with the tab);
// never the password, never localStorage, never a URL.

const STORAGE_KEY = "aerovision.session";
let authMode = "off";
let memory = null; // when sessionStorage is not available
let onUnauthorized = () => {};

/** The server's mode, from GET /health (open; a degraded server still answers 503 with it). */
export async function loadAuthMode() {
  try {
    const response = await fetch("health", { headers: { Accept: "application/json" }, cache: "no-store" });
    const body = await response.json();
    authMode = ["keys", "accounts"].includes(body?.auth) ? body.auth : "off";
  } catch {
    authMode = "off"; // unreachable or an older server: the pages say what fails
  }
  return authMode;
}

export const mode = () => authMode;
/** Whether requests need credentials (keys or accounts mode). */
export const needsCredentials = () => authMode !== "off";

/** The stored session: {kind: "key"|"token", secret, token_id?, account?} or null. */
export function session() {
  try {
    const text = sessionStorage.getItem(STORAGE_KEY);
    return text ? JSON.parse(text) : null;
  } catch {
    return memory;
  }
}

export function saveSession(value) {
  memory = value;
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(value));
  } catch {
    /* storage refused: kept in memory for this page only */
  }
}

export function clearSession() {
  memory = null;
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    /* nothing stored */
  }
}

/** fn(message) runs when the server refuses the stored credentials (401). */
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

/** "Basic base64(login:password)", UTF-8 (btoa alone takes Latin-1 only). */
function basicHeader(login, password) {
  const bytes = new TextEncoder().encode(`${login}:${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/**
 * One request with the credentials. `basic: [login, password]` uses those instead of
 * the session (sign-in); `secret` a given key or token. A 401 for the stored session
 * drops it and tells the app (which shows the sign-in page with the server's reason).
 */
async function send(path, init, { basic, secret, signal } = {}) {
  init.signal = signal;
  if (needsCredentials()) {
    init.credentials = "omit"; // no cookies, and no browser password prompt on a 401
    const stored = session();
    const auth = basic ? basicHeader(...basic) : secret || stored?.secret;
    if (auth) init.headers.Authorization = basic ? auth : `Bearer ${auth}`;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    if (exc && exc.name === "AbortError") throw exc;
    throw new ApiError(0, "Cannot reach the server. Is it running?");
  }
  if (response.ok) return response;
  const error = await errorFrom(response);
  if (response.status === 401 && needsCredentials() && !basic && !secret) {
    clearSession();
    onUnauthorized(error.message);
  }
  throw error;
}

/**
 * fetch() a relative API path; JSON in and out. Throws ApiError with the
 * server's own message on any non-2xx answer or when the server cannot be reached.
 * `basic: [login, password]` or `secret` replace the session's credentials.
 */
export async function api(path, { method = "GET", json, body, signal, basic, secret } = {}) {
  const init = { method, headers: { Accept: "application/json" } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await send(path, init, { basic, secret, signal });
  if (response.status === 204) return null;
  return response.json();
}

/** A task's file ("results/<uid>/matches.png", already escaped) as a Blob, with the credentials. */
export async function fileBlob(url, signal) {
  const response = await send(url, { method: "GET", headers: {} }, { signal });
  return response.blob();
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
