// AeroVision web UI: adding images to a library — files and folders picked or dropped
// (folders through webkitGetAsEntry or <input webkitdirectory>), an optional brief and
// tags, sent BATCH_FILES per request with PARALLEL_REQUESTS requests at a time, with a
// progress bar and each file's outcome: added, duplicate of …, refused: reason.
import { ApiError, api } from "../api.js";
import { fill, h } from "../dom.js";

/** Files per request (the server takes at most 100) and requests at once. */
export const BATCH_FILES = 10;
export const PARALLEL_REQUESTS = 2;
const MAX_BRIEF = 4096;
const MAX_TAGS = 16;
const MAX_TAG = 64;

/** What the server decodes: PNG, JPEG, BMP, TIFF (by name or by the browser's type). */
const IMAGE_NAME = /\.(png|jpe?g|jpe|jfif|bmp|dib|tiff?)$/i;
const IMAGE_TYPE = /^image\/(png|jpeg|bmp|x-ms-bmp|tiff)$/;
export const ACCEPT = "image/png,image/jpeg,image/bmp,image/tiff,.png,.jpg,.jpeg,.jpe,.jfif,.bmp,.dib,.tif,.tiff";

export const sizeText = (bytes) => (bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB`
  : `${Math.max(1, Math.round(bytes / 1024))} KB`);

/** Why `file` is not sent ("" when it is an image file). */
function skipReason(file) {
  if (file.name.startsWith(".")) return "a hidden file";
  if (!IMAGE_NAME.test(file.name) && !IMAGE_TYPE.test(file.type)) return "not a PNG, JPEG, BMP or TIFF file (by its name)";
  return "";
}

// ---------------------------------------------------------------- reading drops and folders

const entryFile = (entry) => new Promise((resolve, reject) => entry.file(resolve, reject));
const readSome = (reader) => new Promise((resolve, reject) => reader.readEntries(resolve, reject));

/** Every file under `entry` (a FileSystemEntry), as {file, path}, each folder in name order. */
async function walk(entry, out) {
  if (entry.isFile) {
    out.push({ file: await entryFile(entry), path: entry.fullPath.replace(/^\/+/, "") });
    return;
  }
  if (!entry.isDirectory) return;
  const reader = entry.createReader();
  const children = [];
  for (;;) { // readEntries answers a part of the folder at a time, then []
    const some = await readSome(reader);
    if (!some.length) break;
    children.push(...some);
  }
  children.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  for (const child of children) await walk(child, out);
}

/**
 * The files of a drop, folders walked. Must be called in the drop event itself: the
 * entries are taken synchronously (the browser empties the DataTransfer afterwards).
 */
export function droppedFiles(dataTransfer) {
  const items = [...(dataTransfer?.items || [])].filter((item) => item.kind === "file");
  const entries = items.map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  const files = [...(dataTransfer?.files || [])];
  if (!entries.length || !entries.every(Boolean)) { // no entries (e.g. a page's own DataTransfer)
    return Promise.resolve(files.map((file) => ({ file, path: file.webkitRelativePath || file.name })));
  }
  return (async () => {
    const out = [];
    for (const entry of entries) await walk(entry, out);
    return out;
  })();
}

// ---------------------------------------------------------------- checks

/** Tags as the server reads them: comma-separated, trimmed, without repeats. */
export function parseTags(text) {
  return [...new Set(text.split(",").map((t) => t.trim()).filter(Boolean))];
}

function tagsProblem(tags) {
  if (tags.length > MAX_TAGS) return `At most ${MAX_TAGS} tags (these are ${tags.length}).`;
  const long = tags.find((t) => t.length > MAX_TAG);
  if (long) return `A tag has at most ${MAX_TAG} characters: “${long.slice(0, 20)}…” has ${long.length}.`;
  // eslint-disable-next-line no-control-regex
  if (tags.some((t) => /[\x00-\x1f]/.test(t))) return "Tags cannot hold control characters.";
  return "";
}

// ---------------------------------------------------------------- outcomes

const OUTCOME_WORDS = {
  waiting: "waiting",
  sending: "sending…",
  added: "added",
  duplicate: "duplicate",
  refused: "refused",
  failed: "not sent",
  skipped: "skipped",
};

/** "“M8 bolt” (image 6b41f3ae)" for an image object of the API. */
export function imageName(image) {
  const id = `image ${String(image?.image_id || "?").slice(0, 8)}`;
  if (image?.brief) return `“${image.brief.length > 60 ? `${image.brief.slice(0, 60)}…` : image.brief}” (${id})`;
  if (image?.external_id) return `${image.external_id} (${id})`;
  return id;
}

/** One file's line in the outcome list; set(state, text) changes it. */
function outcomeRow(item) {
  const badge = h("span", { class: "badge outcome-waiting" }, OUTCOME_WORDS.waiting);
  const detail = h("span", { class: "outcome-detail" });
  const li = h("li", { dataset: { outcome: "waiting" } }, h("span", { class: "outcome-file" }, item.path), " ", badge, " ", detail);
  item.row = li;
  item.set = (state, text = "") => {
    item.state = state;
    li.dataset.outcome = state;
    badge.className = `badge outcome-${state}`;
    badge.textContent = OUTCOME_WORDS[state];
    detail.textContent = text;
  };
  return li;
}

/** What became of `item` by the server's entry for it. */
function applyEntry(item, entry) {
  if (entry && entry.image_id) {
    item.set("added", `as ${imageName(entry)}`);
    return;
  }
  const error = entry?.error;
  if (!error) {
    item.set("failed", "the server's answer did not name this file");
  } else if (error.status === 409 && error.image) {
    item.set("duplicate", `of ${imageName(error.image)}`);
  } else {
    item.set("refused", `${error.detail || "refused"}${error.status ? ` (${error.status})` : ""}`);
  }
}

// ---------------------------------------------------------------- the form

function chunks(list, size) {
  const out = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/**
 * The "Add images" card of a library. onProgress() after each request that added images,
 * onDone() when an upload ended; `signal` is the page's (leaving it stops the upload).
 */
export function addImages(library, { onProgress, onDone, signal }) {
  const idBase = "add";
  let pending = []; // {file, path}
  let skippedNow = []; // {path, reason}: of the last pick or drop
  let running = false;
  let stopRequested = false;

  const filesInput = h("input", { type: "file", id: `${idBase}-files`, multiple: true, accept: ACCEPT,
    "aria-describedby": `${idBase}-drop-help` });
  const folderInput = h("input", { type: "file", id: `${idBase}-folder`, multiple: true, webkitdirectory: true,
    "aria-describedby": `${idBase}-drop-help` });
  const chosen = h("p", { class: "chosen", role: "status" });
  const clear = h("button", { type: "button", class: "link-button", hidden: true, onclick: () => {
    pending = [];
    skippedNow = [];
    showChosen();
  } }, "Clear");
  const skippedList = h("ul", { class: "skipped" });
  const zone = h("div", { class: "drop library-drop" },
    h("div", { class: "drop-pickers" },
      h("div", { class: "field" }, h("label", { for: filesInput.id }, "Image files"), filesInput),
      h("div", { class: "field" }, h("label", { for: folderInput.id }, "A folder of images"), folderInput)),
    h("p", { class: "drop-help", id: `${idBase}-drop-help` },
      "PNG, JPEG, BMP or TIFF. Files and folders can also be dropped here; each pick or drop adds to the list."),
    h("div", { class: "chosen-row" }, chosen, clear),
    skippedList);

  const brief = h("input", { type: "text", id: `${idBase}-brief`, maxlength: String(MAX_BRIEF),
    "aria-describedby": `${idBase}-brief-hint ${idBase}-brief-err` });
  const briefError = h("p", { class: "field-error", id: `${idBase}-brief-err`, hidden: true });
  const briefFromName = h("input", { type: "checkbox", id: `${idBase}-brief-name`,
    "aria-describedby": `${idBase}-brief-name-hint` });
  const tags = h("input", { type: "text", id: `${idBase}-tags`, spellcheck: "false", placeholder: "steel, m8",
    "aria-describedby": `${idBase}-tags-hint ${idBase}-tags-err` });
  const tagsError = h("p", { class: "field-error", id: `${idBase}-tags-err`, hidden: true });
  const dedup = h("select", { id: `${idBase}-dedup`, "aria-describedby": `${idBase}-dedup-hint` },
    h("option", { value: "exact" }, "exact: refuse the same picture (default)"),
    h("option", { value: "near" }, "near: also refuse a near-duplicate"),
    h("option", { value: "off" }, "off: add anyway"));
  const submit = h("button", { type: "submit", class: "primary", disabled: true }, "Add images");
  const errors = h("div", { class: "alert error", role: "alert", hidden: true });

  const progress = h("progress", { id: `${idBase}-progress`, max: "1", value: "0" });
  const progressText = h("span", { class: "progress-text" });
  const counts = h("p", { class: "counts" });
  const stop = h("button", { type: "button", class: "secondary small", onclick: () => {
    stopRequested = true;
    stop.disabled = true;
    stop.textContent = "Stopping after the requests under way…";
  } }, "Stop");
  const retry = h("button", { type: "button", class: "secondary small", hidden: true }, "Try again");
  const outcomeList = h("ol", { class: "outcomes", "aria-label": "Each file's outcome" });
  const progressBox = h("div", { class: "upload-progress", hidden: true },
    h("div", { class: "progress-row" }, h("label", { for: progress.id }, "Upload"), progress, progressText, stop, retry),
    counts, outcomeList);

  const form = h("form", { class: "card add-images", novalidate: true, "aria-labelledby": "add-images-title" },
    h("h2", { id: "add-images-title" }, "Add images"),
    zone,
    h("div", { class: "add-fields" },
      h("div", { class: "field" }, h("label", { for: brief.id }, "Brief ", h("span", { class: "muted" }, "(optional)")), brief,
        h("p", { class: "hint", id: `${idBase}-brief-hint` }, "Searches return it with each hit; at most 4096 characters."),
        briefError,
        h("div", { class: "check" }, briefFromName, h("label", { for: briefFromName.id }, "Each file's name as its brief")),
        h("p", { class: "hint", id: `${idBase}-brief-name-hint` }, "A brief belongs to a request, so this sends one file per request (slower).")),
      h("div", { class: "field" }, h("label", { for: tags.id }, "Tags ", h("span", { class: "muted" }, "(optional)")), tags,
        h("p", { class: "hint", id: `${idBase}-tags-hint` }, "Comma-separated, at most 16; searches and the list below can keep to one."),
        tagsError),
      h("div", { class: "field" }, h("label", { for: dedup.id }, "Duplicates"), dedup,
        h("p", { class: "hint", id: `${idBase}-dedup-hint` }, "What to do with a picture the library already holds."))),
    errors,
    h("div", { class: "row" }, submit),
    progressBox);

  function showChosen() {
    const bytes = pending.reduce((sum, it) => sum + it.file.size, 0);
    chosen.textContent = pending.length
      ? `${pending.length} image${pending.length === 1 ? "" : "s"} chosen (${sizeText(bytes)}).`
      : "No images chosen.";
    fill(skippedList, skippedNow.map(({ path, reason }) => h("li", { class: "muted" }, `Skipped ${path}: ${reason}.`)));
    clear.hidden = !pending.length && !skippedNow.length;
    submit.disabled = running || !pending.length;
    submit.textContent = pending.length ? `Add ${pending.length} image${pending.length === 1 ? "" : "s"}` : "Add images";
  }
  function take(items) {
    const known = new Set(pending.map((it) => it.path + it.file.size + it.file.lastModified));
    skippedNow = [];
    for (const item of items) {
      const reason = skipReason(item.file);
      if (reason) skippedNow.push({ path: item.path, reason });
      else if (!known.has(item.path + item.file.size + item.file.lastModified)) pending.push(item);
    }
    errors.hidden = true;
    showChosen();
  }
  const fromInput = (input) => {
    take([...(input.files || [])].map((file) => ({ file, path: file.webkitRelativePath || file.name })));
    input.value = ""; // the same folder can be picked again
  };
  filesInput.addEventListener("change", () => fromInput(filesInput));
  folderInput.addEventListener("change", () => fromInput(folderInput));
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
    chosen.textContent = "Reading the dropped files…";
    droppedFiles(e.dataTransfer).then(take, (err) => {
      fill(errors, h("strong", {}, "Cannot read the drop: "), String(err?.message || err));
      errors.hidden = false;
      showChosen();
    });
  });
  briefFromName.addEventListener("change", () => {
    brief.disabled = briefFromName.checked;
  });
  showChosen();

  function fieldError(input, box, message) {
    box.textContent = message;
    box.hidden = !message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
    return message ? input : null;
  }
  function checkFields() {
    const badBrief = fieldError(brief, briefError, !briefFromName.checked && brief.value.length > MAX_BRIEF
      ? `At most ${MAX_BRIEF} characters (this one has ${brief.value.length}).` : "");
    const badTags = fieldError(tags, tagsError, tagsProblem(parseTags(tags.value)));
    return badBrief || badTags;
  }

  /** One request: its files' outcomes; throws the request's own failure. */
  async function sendBatch(batch, fields) {
    const body = new FormData();
    for (const item of batch) body.append("image", item.file, item.file.name);
    const briefText = briefFromName.checked ? batch[0].file.name : fields.brief;
    if (briefText) body.append("brief", briefText.slice(0, MAX_BRIEF));
    if (fields.tags.length) body.append("tags", fields.tags.join(","));
    body.append("dedup", fields.dedup);
    for (const item of batch) item.set("sending");
    const answer = await api(`api/v1/libraries/${encodeURIComponent(library.library_id)}/images`,
      { method: "POST", body, signal });
    const entries = Array.isArray(answer?.images) ? answer.images : [];
    batch.forEach((item, i) => applyEntry(item, entries[i]));
    return batch.filter((item) => item.state === "added").length;
  }

  function showCounts(items) {
    const by = (state) => items.filter((it) => it.state === state).length;
    const done = items.filter((it) => !["waiting", "sending"].includes(it.state)).length;
    progress.max = Math.max(1, items.length);
    progress.value = done;
    progressText.textContent = `${done} of ${items.length} files`;
    fill(counts, [["added", by("added")], ["duplicate", by("duplicate")], ["refused", by("refused")],
      ["not sent", by("failed")]].filter(([, n], i) => n || i === 0).map(([word, n], i) =>
      [i ? " · " : "", h("span", { class: `count-${word.replace(" ", "-")}` }, `${n} ${word}`)]));
  }

  async function upload(items, fields) {
    running = true;
    stopRequested = false;
    submit.disabled = true;
    stop.hidden = false;
    stop.disabled = false;
    stop.textContent = "Stop";
    retry.hidden = true;
    progressBox.hidden = false;
    fill(outcomeList, items.map(outcomeRow));
    showCounts(items);
    const perRequest = briefFromName.checked ? 1 : BATCH_FILES;
    const batches = chunks(items, perRequest);
    let next = 0;
    let failure = null;
    const worker = async () => {
      while (next < batches.length && !stopRequested && !failure && !signal.aborted) {
        const batch = batches[next++];
        try {
          if (await sendBatch(batch, fields)) onProgress?.();
        } catch (err) {
          if (signal.aborted || err?.name === "AbortError") return;
          failure = err;
          for (const item of batch) item.set("failed", err instanceof ApiError ? err.message : String(err?.message || err));
        }
        showCounts(items);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(PARALLEL_REQUESTS, batches.length) }, worker));
    } finally {
      running = false;
    }
    if (signal.aborted) return;
    const unsent = items.filter((it) => ["waiting", "sending"].includes(it.state));
    for (const item of unsent) item.set("failed", failure ? "not sent after the error above" : "stopped before it was sent");
    showCounts(items);
    stop.hidden = true;
    const again = items.filter((it) => it.state === "failed");
    retry.hidden = !again.length;
    retry.textContent = `Try the ${again.length} file${again.length === 1 ? "" : "s"} not sent again`;
    retry.onclick = () => upload(again.map(({ file, path }) => ({ file, path })), fields);
    if (failure) {
      fill(errors, h("strong", {}, "The upload stopped: "), h("span", { class: "message" }, failure.message));
      errors.hidden = false;
    }
    showChosen();
    await onDone?.();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.hidden = true;
    const bad = checkFields();
    if (bad) {
      bad.focus();
      return;
    }
    if (!pending.length || running) return;
    const items = pending.map(({ file, path }) => ({ file, path }));
    pending = [];
    skippedNow = [];
    showChosen();
    await upload(items, { brief: brief.value, tags: parseTags(tags.value), dedup: dedup.value });
  });
  return form;
}
