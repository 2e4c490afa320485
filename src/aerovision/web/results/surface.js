// AeroVision web UI: a surface matching result — the 4×4 pose, timings and the rendered pictures.
import { formatNumber, h, stats } from "../dom.js";
import { labelOf } from "../registry.js";
import { matrixTable, resultPictures } from "./common.js";

function timings(values) {
  const unit = (k) => (/_ms$/.test(k) ? " ms" : /_s$/.test(k) ? " s" : "");
  return stats(Object.entries(values).map(([k, v]) =>
    [labelOf(k.replace(/_(ms|s)$/, "")), typeof v === "number" ? `${formatNumber(v, 3)}${unit(k)}` : String(v)]));
}

export function surfaceResult(data, files) {
  const parts = [stats([
    ["Poses found", formatNumber(data.poses_found)],
    data.score !== undefined ? ["Score", formatNumber(data.score)] : null,
    ["ICP residual", formatNumber(data.icp_residual)],
    ["Model points", formatNumber(data.num_model_points)],
    ["Scene points", formatNumber(data.num_scene_points)],
  ])];
  parts.push(h("h3", {}, "Pose"), Array.isArray(data.pose)
    ? matrixTable(data.pose, "4×4 rigid transform, model coordinates → scene coordinates")
    : h("p", { class: "muted" }, "No pose: the model was not found in the scene."));
  if (data.timings && typeof data.timings === "object") parts.push(h("h3", {}, "Timings"), timings(data.timings));
  parts.push(h("h3", {}, "Pictures"), resultPictures(files));
  return h("div", { class: "result-surface" }, parts);
}
