// AeroVision web UI: pieces the result renderers share — pictures, a picture with
// aligned overlays, a sortable table, a matrix.
import { basename, fill, formatNumber, h, svg } from "../dom.js";
import { fileLink, showFile } from "../files.js";

export const PICTURE = /\.(png|jpe?g|gif|webp)$/i;

/** The result pictures (PNG, JPEG) as figures with a download link, except those in `skip`. */
export function resultPictures(files, skip = []) {
  const pictures = files.filter((f) => PICTURE.test(f) && !skip.includes(f));
  return h("div", { class: "pictures" }, pictures.map((path) =>
    pictureFigure(path, `Result picture ${basename(path)}`)));
}

/** One picture that opens full size on a click, with its download link (and `caption` before it). */
export function pictureFigure(path, alt, { className = "picture", caption = null } = {}) {
  const img = h("img", { alt });
  const open = fileLink(path, { newTab: true, "aria-label": `Open ${basename(path)} full size` }, img);
  const save = fileLink(path, { download: basename(path) }, basename(path));
  showFile(img, path, { links: [open, save] });
  return h("figure", { class: className }, open, h("figcaption", {}, caption, save));
}

/** Links to download each result file. */
export function downloads(files, title = "Download: ") {
  return h("p", { class: "downloads" }, title, files.map((f, i) =>
    [i ? " · " : "", fileLink(f, { download: basename(f) }, basename(f))]));
}

/**
 * A picture with overlays that stay aligned: the stage keeps the image's
 * aspect ratio and an SVG in the image's own pixel coordinates lies on top.
 */
export function stage({ src, alt, fallback }) {
  const base = h("img", { class: "stage-base", alt });
  showFile(base, src);
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
    if (fallback && base.dataset.file !== fallback.src) {
      showFile(base, fallback.src);
      base.alt = fallback.alt;
    } else if (!fallback) {
      // e.g. a TIFF input: browsers do not display TIFF
      root.replaceWith(h("p", { class: "muted" }, `This browser cannot display ${basename(base.dataset.file)}.`));
    }
  });
  return {
    root, base, overlay, layer,
    setBase(path, text, fb) {
      fallback = fb;
      if (base.dataset.file !== path) showFile(base, path);
      base.alt = text;
    },
  };
}

function sortRows(rows, key, ascending) {
  const sorted = rows.slice();
  if (key) {
    sorted.sort((a, b) => {
      const d = a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0;
      return ascending ? d : -d;
    });
  }
  return sorted;
}

/** A table whose column headers sort it; columns: [{key, label, numeric, format, descending}]. */
export function sortableTable({ caption, columns, rows, className, onRowEnter, onRowLeave }) {
  let sortKey = null;
  let ascending = true;
  const tbody = h("tbody", {});
  const headers = columns.map((col) => {
    const button = h("button", { type: "button", class: "sort", onclick: () => {
      if (sortKey === col.key) ascending = !ascending;
      else {
        sortKey = col.key;
        ascending = !col.descending;
      }
      draw();
    } }, col.label, h("span", { class: "sort-mark", "aria-hidden": "true" }));
    return h("th", { scope: "col", class: col.numeric ? "num" : null, dataset: { key: col.key } }, button);
  });
  function draw() {
    headers.forEach((th) => {
      const active = th.dataset.key === sortKey;
      if (active) th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
      th.querySelector(".sort-mark").textContent = active ? (ascending ? " ▲" : " ▼") : " ↕";
    });
    fill(tbody, sortRows(rows, sortKey, ascending).map((row) => {
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

export function matrixTable(matrix, caption, digits = 6) {
  return h("div", { class: "table-wrap" }, h("table", { class: "matrix" },
    h("caption", {}, caption),
    h("tbody", {}, matrix.map((row) => h("tr", {}, row.map((v) =>
      h("td", { class: "num" }, typeof v === "number" ? formatNumber(v, digits) : String(v))))))));
}
