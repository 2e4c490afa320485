// AeroVision web UI: which renderer shows a tool's result — a lookup table keyed by
// tool name, and a generic renderer for every other tool (a tool needs no UI code).
import { h } from "../dom.js";
import { chainResult } from "./chain.js";
import { featureResult } from "./feature.js";
import { genericResult } from "./generic.js";
import { surfaceResult } from "./surface.js";
import { templateResult } from "./template.js";

/** renderer(data, files, task, ctx) → element; ctx: {registry, tool, render(tool, data, files)}. */
export const RENDERERS = {
  template: templateResult,
  feature: featureResult,
  surface: surfaceResult,
  chain: chainResult,
};

/** The result of a done task (or of a chain's step) of tool `name`. */
export function renderResult(name, data, files, task, registry) {
  const renderer = Object.hasOwn(RENDERERS, name) ? RENDERERS[name] : genericResult;
  const ctx = {
    registry,
    tool: registry.get(name),
    render: (tool, d, f) => renderResult(tool, d, f, task, registry),
  };
  try {
    return renderer(data || {}, files || [], task, ctx);
  } catch (err) {
    console.error(err); // an unexpected result shape: still show the values
    return renderer === genericResult ? h("pre", { class: "json" }, JSON.stringify(data, null, 2))
      : genericResult(data || {}, files || [], task, ctx);
  }
}
