// AeroVision web UI: searching a library with a dropped or picked image — the hits
// (thumbnail, match_type, score, brief) and the query image with each located hit's
// `polygon` (the library image's outline in query pixels) drawn on it in an SVG whose
// viewBox is the query's pixel size, so it scales with the picture; a hit and its
// outline light up together on hover or focus.
import { ApiError, api } from "../api.js";
import { errorBox, fill, formatNumber, h, svg } from "../dom.js";
import { fileImage } from "../files.js";
import { ACCEPT, imageName } from "./upload.js";

export const MODES = {
  auto: "duplicates, then objects, then look-alikes",
  duplicate: "the same picture (re-encoded, resized, cropped, brighter…)",
  object: "a library image inside the query, with its outline",
  similar: "looks alike (layout, colours, texture)",
};

const MATCH_WORDS = { duplicate: "duplicate", object: "object", similar: "similar" };

function numberInput(id, attrs) {
  return h("input", { id, type: "number", inputmode: "decimal", required: true, ...attrs });
}

/** The query picture with the outlines of the hits that have a polygon. */
function queryView(file, url, highlighter) {
  const base = h("img", { class: "stage-base", alt: `The query image ${file.name}`, src: url });
  const layer = svg("svg", { class: "hit-outlines", "aria-hidden": "true", preserveAspectRatio: "none" });
  const stageEl = h("div", { class: "stage query-stage" }, base, layer);
  const caption = h("figcaption", {}, `${file.name}`);
  const figure = h("figure", { class: "query-view" }, stageEl, caption);
  let outlined = 0;
  const size = { width: 0, height: 0 };
  const labelSize = () => Math.max(12, Math.round(Math.max(size.width, size.height) / 28));

  const describe = () => {
    fill(caption, `${file.name}`, size.width ? ` · ${size.width}×${size.height} px` : "",
      outlined ? ` · ${outlined} outline${outlined === 1 ? "" : "s"}: hover a hit or an outline to see which is which`
        : " · no hit located here (only object and duplicate hits have an outline)");
  };
  base.addEventListener("load", () => {
    size.width = base.naturalWidth;
    size.height = base.naturalHeight;
    layer.setAttribute("viewBox", `0 0 ${size.width} ${size.height}`);
    layer.dataset.width = String(size.width);
    layer.dataset.height = String(size.height);
    stageEl.style.setProperty("--aspect", String(size.width / size.height));
    stageEl.style.setProperty("--natural-width", `${size.width}px`);
    for (const label of layer.querySelectorAll("text")) label.setAttribute("font-size", String(labelSize()));
    describe();
  });
  base.addEventListener("error", () => {
    figure.replaceWith(h("p", { class: "alert info" },
      `This browser cannot display ${file.name}, so the outlines cannot be drawn on it; the hits are listed.`));
  });
  describe();
  return {
    root: figure,
    /** Draw hit number `rank`'s polygon (query pixels). */
    outline(hit, rank) {
      const points = hit.polygon.map(([x, y]) => `${x},${y}`).join(" ");
      const cx = hit.polygon.reduce((s, p) => s + p[0], 0) / hit.polygon.length;
      const cy = hit.polygon.reduce((s, p) => s + p[1], 0) / hit.polygon.length;
      const label = svg("text", { x: cx, y: cy, "text-anchor": "middle", "dominant-baseline": "central",
        "font-size": size.width ? labelSize() : 16 });
      label.textContent = String(rank);
      const shape = svg("polygon", { points, "data-points": JSON.stringify(hit.polygon) });
      const group = svg("g", { class: `hit-outline match-${hit.match_type}`, "data-rank": rank,
        "data-image-id": hit.image_id, "data-match-type": hit.match_type });
      group.append(shape, label);
      group.addEventListener("mouseenter", () => highlighter.set(rank));
      group.addEventListener("mouseleave", () => highlighter.set(null));
      group.addEventListener("click", () => highlighter.focusHit(rank));
      layer.append(group);
      outlined += 1;
      describe();
      return group;
    },
    layer,
  };
}

function hitItem(hit, rank, highlighter) {
  const alt = `Thumbnail of ${hit.brief || `image ${hit.image_id.slice(0, 8)}`}`;
  const thumb = fileImage(hit.thumbnail, { alt, loading: "lazy" });
  thumb.addEventListener("error", () => thumb.replaceWith(h("span", { class: "thumb-missing" }, "No preview")));
  const located = Array.isArray(hit.polygon) && hit.polygon.length >= 3;
  const li = h("li", {
    class: `hit match-${hit.match_type}`, tabindex: "0",
    dataset: { rank: String(rank), imageId: hit.image_id, matchType: hit.match_type, score: String(hit.score) },
    "aria-label": `Hit ${rank}: ${hit.match_type}, score ${formatNumber(hit.score, 3)}, ${imageName(hit)}`,
  },
  h("span", { class: "hit-rank", "aria-hidden": "true" }, String(rank)),
  thumb,
  h("div", { class: "hit-text" },
    h("p", { class: "hit-head" },
      h("span", { class: `badge match-${hit.match_type}` }, MATCH_WORDS[hit.match_type] || hit.match_type), " ",
      h("span", { class: "hit-score" }, `score ${hit.score.toFixed(3)}`),
      typeof hit.inliers === "number" ? h("span", { class: "muted" }, ` · ${hit.inliers} inliers`) : null,
      located ? h("span", { class: "muted" }, " · outlined") : null),
    hit.brief ? h("p", { class: "brief" }, hit.brief) : h("p", { class: "brief muted" }, `No brief (image ${hit.image_id.slice(0, 8)})`),
    hit.tags?.length ? h("ul", { class: "chips tags" }, hit.tags.map((t) => h("li", {}, t))) : null));
  for (const [type, active] of [["mouseenter", true], ["mouseleave", false], ["focus", true], ["blur", false]]) {
    li.addEventListener(type, () => highlighter.set(active ? rank : null));
  }
  return li;
}

/** Which hit is lit: its list item and its outline, together. */
function makeHighlighter() {
  const items = new Map(); // rank → {li, outline}
  let layer = null;
  return {
    add(rank, parts) {
      items.set(rank, parts);
    },
    setLayer(svgLayer) {
      layer = svgLayer;
    },
    set(rank) {
      for (const [r, { li, outline }] of items) {
        li.classList.toggle("active", r === rank);
        outline?.classList.toggle("active", r === rank);
      }
      layer?.classList.toggle("has-active", rank !== null && Boolean(items.get(rank)?.outline));
    },
    focusHit(rank) {
      items.get(rank)?.li.focus();
    },
  };
}

function timingsText(timings) {
  if (!timings) return "";
  const parts = [];
  if (typeof timings.total_ms === "number") parts.push(`${Math.round(timings.total_ms)} ms`);
  for (const [key, word] of [["describe_ms", "describing"], ["verify_ms", "verifying"]]) {
    if (typeof timings[key] === "number") parts.push(`${word} ${Math.round(timings[key])} ms`);
  }
  if (typeof timings.candidates === "number") parts.push(`${timings.candidates} candidates checked`);
  return parts.length ? `Searched in ${parts.join(" · ")}.` : "";
}

/** The "Search" card of a library; imageCount() says how many images it holds now. */
export function searchLibrary(library, { signal, imageCount }) {
  const input = h("input", { type: "file", id: "search-image", accept: ACCEPT,
    "aria-describedby": "search-image-help search-image-err" });
  const inputError = h("p", { class: "field-error", id: "search-image-err", hidden: true });
  const zone = h("div", { class: "drop search-drop" },
    h("div", { class: "label-row" }, h("label", { for: input.id, class: "drop-label" }, "Query image")),
    h("span", { class: "drop-help", id: "search-image-help" }, "The search starts as soon as an image is chosen or dropped here."),
    input,
    h("p", { class: "drop-hint", "aria-hidden": "true" }, "…or drop an image here"),
    inputError);
  const mode = h("select", { id: "search-mode", "aria-describedby": "search-mode-hint" },
    Object.keys(MODES).map((m) => h("option", { value: m }, m)));
  const modeHint = h("p", { class: "hint", id: "search-mode-hint" }, MODES.auto);
  mode.addEventListener("change", () => {
    modeHint.textContent = MODES[mode.value];
  });
  const limit = numberInput("search-limit", { min: "1", max: "100", step: "1", value: "10", inputmode: "numeric" });
  const minScore = numberInput("search-min-score", { min: "0", max: "1", step: "any", value: "0" });
  const tag = h("input", { type: "text", id: "search-tag", maxlength: "64", spellcheck: "false", autocomplete: "off" });
  const paramsError = h("p", { class: "field-error", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Search");
  const status = h("p", { class: "search-status", role: "status" });
  const results = h("div", { class: "search-results" });
  const form = h("form", { class: "card search-form", novalidate: true, role: "search", "aria-labelledby": "search-title" },
    h("h2", { id: "search-title" }, "Search"),
    h("div", { class: "search-inputs" },
      zone,
      h("div", { class: "search-params" },
        h("div", { class: "field" }, h("label", { for: mode.id }, "Mode"), mode, modeHint),
        h("div", { class: "field" }, h("label", { for: limit.id }, "Hits"), limit, h("p", { class: "hint" }, "1–100 per page")),
        h("div", { class: "field" }, h("label", { for: minScore.id }, "Minimum score"), minScore, h("p", { class: "hint" }, "0–1")),
        h("div", { class: "field" }, h("label", { for: tag.id }, "Only the tag ", h("span", { class: "muted" }, "(optional)")), tag))),
    paramsError,
    h("div", { class: "row" }, submit, status),
    results);

  let query = null; // {file, url}
  let running = null; // the search under way: its AbortController
  signal.addEventListener("abort", () => {
    running?.abort();
    if (query) URL.revokeObjectURL(query.url);
  });

  const setInputError = (message) => {
    inputError.textContent = message;
    inputError.hidden = !message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
    zone.classList.toggle("invalid", Boolean(message));
  };
  const readParams = () => {
    const n = Number(limit.value);
    const s = Number(minScore.value);
    let problem = "";
    if (!Number.isInteger(n) || n < 1 || n > 100) problem = "Hits: a whole number from 1 to 100.";
    else if (minScore.value === "" || !Number.isFinite(s) || s < 0 || s > 1) problem = "Minimum score: a number from 0 to 1.";
    paramsError.textContent = problem;
    paramsError.hidden = !problem;
    return problem ? null : { mode: mode.value, limit: n, min_score: s, tag: tag.value.trim() };
  };

  /** One page of hits (offset) for the current query; the view when it is the first. */
  async function search(params, offset, shown) {
    running?.abort();
    const controller = new AbortController();
    running = controller;
    const body = new FormData();
    body.append("image", query.file, query.file.name);
    body.append("mode", params.mode);
    body.append("limit", String(params.limit));
    body.append("offset", String(offset));
    if (params.min_score) body.append("min_score", String(params.min_score));
    if (params.tag) body.append("tag", params.tag);
    submit.disabled = true;
    status.textContent = offset ? "Loading more hits…" : `Searching with ${query.file.name}…`;
    try {
      const answer = await api(`api/v1/libraries/${encodeURIComponent(library.library_id)}/search`,
        { method: "POST", body, signal: controller.signal });
      return answer;
    } catch (err) {
      if (err?.name === "AbortError") return null;
      if (!(err instanceof ApiError)) throw err;
      const onImage = err.errors.find((e) => e.field === "image");
      if (onImage) setInputError(onImage.msg);
      status.textContent = "";
      fill(shown || results, errorBox(err.message, { title: "The search failed" }));
      return null;
    } finally {
      if (running === controller) {
        running = null;
        submit.disabled = false;
      }
    }
  }

  async function run() {
    setInputError("");
    if (!query) {
      setInputError("Choose or drop an image to search with.");
      input.focus();
      return;
    }
    const params = readParams();
    if (!params) return;
    const answer = await search(params, 0);
    if (!answer) return;
    const highlighter = makeHighlighter();
    const view = queryView(query.file, query.url, highlighter);
    highlighter.setLayer(view.layer);
    const list = h("ol", { class: "hits", "aria-label": "Hits, best first" });
    const more = h("button", { type: "button", class: "secondary", hidden: true }, "More hits");
    const moreError = h("div", {});
    const timing = h("p", { class: "muted timings" });
    let count = 0;
    const addHits = (page) => {
      for (const hit of page.results) {
        count += 1;
        const li = hitItem(hit, count, highlighter);
        const outline = Array.isArray(hit.polygon) && hit.polygon.length >= 3 ? view.outline(hit, count) : null;
        highlighter.add(count, { li, outline });
        list.append(li);
      }
      more.hidden = !page.has_more;
      timing.textContent = timingsText(page.timings);
      const kinds = ["duplicate", "object", "similar"].map((k) => [k, page.results.filter((r) => r.match_type === k).length]);
      status.textContent = count
        ? `${count} hit${count === 1 ? "" : "s"}${page.has_more ? " so far" : ""}: ${kinds.filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(", ")} on this page.`
        : "No hits.";
    };
    more.addEventListener("click", async () => {
      fill(moreError);
      const next = await search(params, count, moreError);
      if (next) addHits(next);
    });
    const none = h("p", { class: "muted empty" }, imageCount() ? "No image of the library matched." : "The library holds no images yet: add some first.");
    addHits(answer);
    fill(results, h("div", { class: "search-layout" },
      view.root,
      h("div", { class: "hits-side" },
        h("h3", {}, `Hits (${params.mode})`),
        count ? list : none, more, moreError, timing)));
  }

  const choose = (file) => {
    if (!file) return;
    if (query) URL.revokeObjectURL(query.url);
    query = { file, url: URL.createObjectURL(file) };
    run();
  };
  input.addEventListener("change", () => choose(input.files?.[0]));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", (e) => {
    if (!zone.contains(e.relatedTarget)) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    const file = e.dataTransfer?.files?.[0];
    if (!file) return;
    const transfer = new DataTransfer(); // the input shows the dropped file's name
    transfer.items.add(file);
    input.files = transfer.files;
    choose(file);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  return form;
}
