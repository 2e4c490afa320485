// AeroVision web UI: a template matching result — the matches picture, the heat map
// over the input image (with its opacity), and the sortable table of the matches.
import { append, basename, formatNumber, h, stats, svg, uniqueId } from "../dom.js";
import { showFile } from "../files.js";
import { downloads, resultPictures, sortableTable, stage } from "./common.js";

function summary(data, matches) {
  return stats([
    ["Matches", `${data.matches_found ?? matches.length}`],
    ["Passed threshold + NMS", `${data.filtered_matches ?? "—"}`],
    ["Best score", formatNumber(data.best_score)],
    ["Method", data.method ?? "—"],
    data.score_mode ? ["Scores", data.score_mode] : null,
  ]);
}

/** "Show: matches | heat map over the image", with the heat map's opacity slider. */
function viewSwitch(view, boxes, { source, matchesPng, heatmapPng }) {
  const name = uniqueId("view");
  const opacityId = uniqueId("opacity");
  const opacity = h("input", { type: "range", id: opacityId, min: "0", max: "100", value: "60", step: "5" });
  const opacityOut = h("output", { for: opacityId }, "60 %");
  const opacityRow = h("div", { class: "opacity", hidden: true },
    h("label", { for: opacityId }, "Heat map opacity"), opacity, opacityOut);
  const radios = [["matches", "Matches"], heatmapPng ? ["heat", "Heat map over the image"] : null]
    .filter(Boolean).map(([value, text], i) => h("span", { class: "radio" },
      h("input", { type: "radio", name, id: `${name}-${value}`, value, checked: i === 0 }),
      h("label", { for: `${name}-${value}` }, text)));
  const switcher = h("fieldset", { class: "view-switch" }, h("legend", {}, "Show"), radios, opacityRow);
  const applyOpacity = () => {
    view.overlay.style.setProperty("opacity", String(Number(opacity.value) / 100));
    opacityOut.textContent = `${opacity.value} %`;
  };
  opacity.addEventListener("input", applyOpacity);
  switcher.addEventListener("change", (e) => {
    if (e.target.name !== name) return;
    const heat = e.target.value === "heat";
    if (heat) {
      view.setBase(source || matchesPng, `The input image ${basename(source || matchesPng)}`,
        { src: matchesPng, alt: "Matches drawn on the image" });
      if (view.overlay.dataset.file !== heatmapPng) showFile(view.overlay, heatmapPng);
      view.overlay.alt = "Heat map of the match score";
      applyOpacity();
    } else {
      view.setBase(matchesPng, `Matches drawn on ${basename(source || "the image")}`);
    }
    view.overlay.hidden = !heat;
    boxes.classList.toggle("visible", heat);
    opacityRow.hidden = !heat;
  });
  return switcher;
}

function matchTable(matches, highlight) {
  return sortableTable({
    caption: `${matches.length} match${matches.length === 1 ? "" : "es"}, best first; hover a row to find it on the picture.`,
    columns: [
      { key: "rank", label: "#", numeric: true },
      { key: "x", label: "x", numeric: true },
      { key: "y", label: "y", numeric: true },
      { key: "w", label: "w", numeric: true },
      { key: "h", label: "h", numeric: true },
      { key: "score", label: "Score", numeric: true, descending: true, format: (v) => v.toFixed(4) },
    ],
    rows: matches.map((m, i) => ({ ...m, rank: i + 1 })),
    className: "matches",
    onRowEnter: (m) => {
      for (const [k, v] of Object.entries({ x: m.x, y: m.y, width: m.w, height: m.h })) highlight.setAttribute(k, v);
      highlight.setAttribute("visibility", "visible");
    },
    onRowLeave: () => highlight.setAttribute("visibility", "hidden"),
  });
}

export function templateResult(data, files, task) {
  const matches = Array.isArray(data.matches) ? data.matches : [];
  const matchesPng = files.find((f) => f.endsWith("matches.png"));
  const heatmapPng = files.find((f) => f.endsWith("heatmap.png"));
  const source = task.input_files?.[0];
  const parts = [summary(data, matches)];
  if (!matches.length) {
    parts.push(h("p", { class: "alert info" }, "No match passed the threshold",
      typeof data.best_score === "number" ? ` (best score anywhere: ${formatNumber(data.best_score)})` : "", "."));
  }
  if (!matchesPng) return h("div", { class: "result-template" }, parts, resultPictures(files));

  const view = stage({ src: matchesPng, alt: `Matches drawn on ${basename(source || "the image")}` });
  const boxes = svg("g", { class: "boxes" });
  const highlight = svg("rect", { class: "box-highlight", visibility: "hidden" });
  view.layer.append(boxes, highlight);
  for (const m of matches) boxes.append(svg("rect", { x: m.x, y: m.y, width: m.w, height: m.h }));
  const viewer = h("div", { class: "viewer" },
    viewSwitch(view, boxes, { source, matchesPng, heatmapPng }), view.root, downloads(files));
  const side = h("div", { class: "side" });
  if (matches.length) append(side, [h("h3", {}, "Match table"), matchTable(matches, highlight)]);
  parts.push(h("div", { class: "template-layout" }, viewer, side));
  return h("div", { class: "result-template" }, parts);
}
