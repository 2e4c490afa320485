// AeroVision web UI: building the page (plain DOM) and formatting values for people.

/** h("p", {class: "x", onclick: fn}, "text", child, [children]) */
export function h(tag, attrs = {}, ...children) {
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
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element; attributes only (no inline style, for the page's CSP). */
export function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

let uniqueCounter = 0;
export const uniqueId = (prefix) => `${prefix}-${++uniqueCounter}`;

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A file the API serves: "results/<uid>/matches.png" → the same path, each part escaped. */
export const fileUrl = (path) => path.split("/").map(encodeURIComponent).join("/");
export const basename = (path) => path.split("/").pop();

export function setTitle(text) {
  document.title = text ? `${text} · AeroVision` : "AeroVision";
}

// ---------------------------------------------------------------- formatting

export function formatTime(ts) {
  if (!ts) return "—";
  const date = new Date(`${ts}Z`);
  if (Number.isNaN(date.getTime())) return ts;
  return date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function timeEl(ts) {
  return h("time", { datetime: ts ? `${ts}Z` : null, title: ts ? `${ts} UTC` : null }, formatTime(ts));
}

export function formatNumber(value, digits = 4) {
  if (typeof value !== "number") return value === null || value === undefined ? "—" : String(value);
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(digits)));
}

/** The value of a field formatted the way a person reads it. */
export function showValue(value) {
  if (typeof value === "boolean") return value ? "on" : "off";
  if (value !== null && typeof value === "object") return JSON.stringify(value);
  return formatNumber(value);
}

export function duration(from, to) {
  const ms = new Date(`${to}Z`) - new Date(`${from}Z`);
  if (!Number.isFinite(ms)) return "—";
  if (ms < 1000) return "under 1 s";
  if (ms < 60000) return `${Math.round(ms / 1000)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

// ---------------------------------------------------------------- small shared pieces

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status);
}

export function errorBox(message, { title = "Error" } = {}) {
  return h("div", { class: "alert error", role: "alert" },
    h("strong", {}, `${title}: `),
    h("span", { class: "message" }, message));
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

/** A row of labelled values: [[label, value], …] (null entries are skipped). */
export function stats(pairs) {
  return h("dl", { class: "stats" }, pairs.filter(Boolean).map(([label, value]) =>
    h("div", {}, h("dt", {}, label), h("dd", {}, value))));
}

/** A task's parameters as name=value chips. */
export function paramChips(params) {
  return h("ul", { class: "chips" }, Object.entries(params || {}).map(([k, v]) =>
    h("li", {}, h("code", {}, k), "=", h("span", {}, showValue(v)))));
}
