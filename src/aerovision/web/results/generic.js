// AeroVision web UI: the result of any tool without a renderer of its own — the
// one-line result, its numbers and words as a table, its pictures, and its lists
// and objects laid out readably.
import { formatNumber, h, stats, svg } from "../dom.js";
import { labelOf, resultLine } from "../registry.js";
import { PICTURE, downloads, matrixTable, resultPictures } from "./common.js";

const isScalar = (v) => v === null || ["number", "string", "boolean"].includes(typeof v);
const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isNumberList = (v) => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number");
const INLINE_NUMBERS = 12;

/** A result value the way a person reads it. */
export function resultValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return formatNumber(value);
  return String(value);
}

/** Bars of a list of numbers (a histogram, a profile), drawn in the list's own units. */
function sparkline(values) {
  const top = Math.max(...values.map((v) => Math.abs(v)), 0) || 1;
  const chart = svg("svg", { class: "spark", viewBox: `0 0 ${values.length} 1`, preserveAspectRatio: "none",
    "aria-hidden": "true" });
  values.forEach((v, i) => {
    const height = Math.abs(v) / top;
    chart.append(svg("rect", { x: i, y: 1 - height, width: 1, height }));
  });
  return chart;
}

/** A list of numbers: inline when short, else bars and the numbers one click away. */
function numberList(values) {
  if (values.length <= INLINE_NUMBERS) return h("span", { class: "numbers" }, values.map(formatNumber).join(", "));
  return h("div", { class: "number-list" }, sparkline(values),
    h("details", {}, h("summary", {}, `${values.length} values, ${formatNumber(Math.min(...values))}–${formatNumber(Math.max(...values))}`),
      h("p", { class: "numbers" }, values.map(formatNumber).join(", "))));
}

function isMatrix(value) {
  return Array.isArray(value) && value.length > 0 && value.every((row) => isNumberList(row)
    && row.length === value[0].length && row.length <= INLINE_NUMBERS);
}

/** A list of objects as a table: one row each, one column per key. */
function objectTable(rows, caption) {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const numeric = (k) => rows.every((r) => typeof r[k] === "number" || r[k] === undefined);
  return h("div", { class: "table-wrap" }, h("table", { class: "result-table" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, keys.map((k) => h("th", { scope: "col", class: numeric(k) ? "num" : null }, labelOf(k))))),
    h("tbody", {}, rows.map((r) => h("tr", {}, keys.map((k) =>
      h("td", { class: numeric(k) ? "num" : null }, valueView(r[k], labelOf(k), 2))))))));
}

/** Any JSON value, readable: scalars as text, lists of numbers as bars, lists of objects as tables. */
function valueView(value, label, depth) {
  if (value === undefined) return "";
  if (isScalar(value)) return resultValue(value);
  if (isNumberList(value)) return numberList(value);
  if (isMatrix(value)) return matrixTable(value, label);
  if (Array.isArray(value) && !value.length) return h("span", { class: "muted" }, "none");
  if (depth > 3) return h("code", { class: "json-inline" }, JSON.stringify(value));
  if (Array.isArray(value) && value.every(isPlainObject)) return objectTable(value, label);
  if (Array.isArray(value)) return h("ul", { class: "value-list" }, value.map((v) => h("li", {}, valueView(v, label, depth + 1))));
  return objectView(value, depth + 1);
}

/** An object: its scalars as a row of values, then each list or object under its own heading. */
function objectView(data, depth = 0) {
  const entries = Object.entries(data);
  const scalars = entries.filter(([, v]) => isScalar(v));
  const nested = entries.filter(([, v]) => !isScalar(v));
  return h("div", { class: "result-object" },
    scalars.length ? stats(scalars.map(([k, v]) => [labelOf(k), resultValue(v)])) : null,
    nested.map(([k, v]) => h("section", { class: "result-part" },
      h(depth ? "h4" : "h3", {}, labelOf(k)), valueView(v, labelOf(k), depth + 1))));
}

export function genericResult(data, files, task, ctx) {
  const line = resultLine(ctx?.tool, data);
  const others = files.filter((f) => !PICTURE.test(f));
  return h("div", { class: "result-generic" },
    line ? h("p", { class: "result-line" }, line) : null,
    objectView(data),
    files.some((f) => PICTURE.test(f)) ? [h("h3", {}, "Pictures"), resultPictures(files)] : null,
    others.length ? downloads(others, "Files: ") : null);
}
