// AeroVision web UI: a feature matching result — the matches picture, the query's
// outline on the train image, and the 3×3 homography.
import { append, basename, formatNumber, h, stats, svg } from "../dom.js";
import { matrixTable, pictureFigure, resultPictures, stage } from "./common.js";

const yesNo = (v) => (v === undefined ? "—" : v ? "yes" : "no");

function summary(data) {
  return stats([
    ["Consistent homography", yesNo(data.found)],
    ["Good matches", formatNumber(data.good_matches)],
    ["Inliers", data.inliers === undefined ? "—"
      : `${data.inliers}${typeof data.inlier_ratio === "number" ? ` (${Math.round(data.inlier_ratio * 100)} %)` : ""}`],
    ["Query keypoints", formatNumber(data.query_keypoints)],
    ["Train keypoints", formatNumber(data.train_keypoints)],
    ["Detector / matcher", `${data.detector ?? "—"} / ${data.matcher ?? "—"}`],
  ]);
}

function outlineOn(train, data) {
  const outline = h("div", {}, h("h3", {}, "Outline on the train image"));
  if (!(Array.isArray(data.corners) && data.corners.length === 4 && train)) {
    return append(outline, [h("p", { class: "muted" }, "No outline: no trustworthy homography was found.")]);
  }
  const view = stage({ src: train, alt: `The train image ${basename(train)} with the query's outline` });
  view.layer.append(svg("polygon", { class: "outline", points: data.corners.map(([x, y]) => `${x},${y}`).join(" ") }));
  if (Array.isArray(data.center)) {
    view.layer.append(svg("circle", { class: "center", cx: data.center[0], cy: data.center[1], r: 4 }));
  }
  return append(outline, [h("div", { class: "viewer" }, view.root),
    h("p", { class: "muted" }, "Corners (train pixels): ",
      data.corners.map(([x, y]) => `(${formatNumber(x, 6)}, ${formatNumber(y, 6)})`).join(", "))]);
}

export function featureResult(data, files, task) {
  const parts = [summary(data)];
  const matchesPng = files.find((f) => f.endsWith("matches.png"));
  if (matchesPng) {
    parts.push(pictureFigure(matchesPng, "Keypoint matches between the query and the train image",
      { className: "picture wide", caption: "Good matches, query left, train right · " }));
  }
  parts.push(resultPictures(files, matchesPng ? [matchesPng] : []));
  const homography = h("div", {}, h("h3", {}, "Homography"),
    Array.isArray(data.homography)
      ? matrixTable(data.homography, "3×3, query pixels → train pixels")
      : h("p", { class: "muted" }, "None (too few consistent matches)."));
  parts.push(h("div", { class: "split" }, outlineOn(task.input_files?.[1], data), homography));
  return h("div", { class: "result-feature" }, parts);
}
