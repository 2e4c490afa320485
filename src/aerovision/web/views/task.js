// AeroVision web UI: #/tasks/<uid> — one task, live until it ends: status, inputs,
// parameters, its result (through the tool's renderer), raw JSON and a curl command.
import { ApiError, api, mode } from "../api.js";
import {
  basename, duration, errorBox, fill, h, paramChips, setTitle, sleep, statusBadge, timeEl,
} from "../dom.js";
import { fileImage, fileLink } from "../files.js";
import { labelOf, loadRegistry, takesSteps } from "../registry.js";
import { renderResult } from "../results/index.js";

export const TERMINAL = new Set(["done", "error"]);

const EMPTY_REGISTRY = { list: [], get: () => null, title: (name) => name, chainable: () => [] };

/** The form field name of a task's i-th input file (a repeated input takes the rest). */
function inputName(tool, i) {
  const inputs = tool?.inputs || [];
  if (i < inputs.length) return inputs[i].name;
  const last = inputs[inputs.length - 1];
  return last?.many ? last.name : null;
}

/** Whether the task's params are other tools' steps (the chain). */
const hasSteps = (task, tool) => (tool ? takesSteps(tool) : Array.isArray(task.params?.steps));

/** curl that submits the same files with the task's effective parameters. */
export function curlFor(task, tool) {
  const quote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
  const base = new URL(".", location.href).href.replace(/\/$/, "");
  const submit = tool?.submit || `/api/v1/match/${task.tool}`;
  const lines = [`curl -X POST ${quote(`${base}${submit}`)}`];
  // the credentials by name only: the page never writes a secret where it can be copied
  // (a token or the API key, as the CLI and the Python client read it)
  if (mode() !== "off") lines.push('-H "Authorization: Bearer $AEROVISION_TOKEN"');
  (task.input_files || []).forEach((path, i) => {
    lines.push(`-F ${quote(`${inputName(tool, i) || `file${i + 1}`}=@${basename(path)}`)}`);
  });
  if (hasSteps(task, tool)) {
    const steps = (task.params?.steps || []).map((s) => ({ tool: s.tool, params: s.params }));
    lines.push(`-F ${quote(`steps=${JSON.stringify(steps)}`)}`);
  } else {
    for (const [key, value] of Object.entries(task.params || {})) {
      const text = value !== null && typeof value === "object" ? JSON.stringify(value) : String(value);
      lines.push(`-F ${quote(`${key}=${text}`)}`);
    }
  }
  return lines.join(" \\\n  ");
}

function thumbnails(task, tool) {
  const ended = TERMINAL.has(task.status); // thumbnails are written right after the verdict
  return h("div", { class: "thumbs" }, (task.input_files || []).map((path, i) => {
    const thumb = task.thumbnails?.[i];
    const name = basename(path);
    const input = tool?.inputs?.[Math.min(i, (tool?.inputs?.length || 1) - 1)];
    const label = inputName(tool, i) ? labelOf(inputName(tool, i), { description: input?.help }) : `Input ${i + 1}`;
    const figure = h("figure", { class: "thumb" });
    const placeholder = () => h("div", { class: "thumb-missing" },
      ended ? "No preview" : "Preview when the task is done");
    if (thumb && ended) {
      const img = fileImage(thumb, { alt: `Thumbnail of ${name}`, loading: "lazy" });
      img.addEventListener("error", () => img.replaceWith(placeholder()));
      figure.append(img);
    } else {
      figure.append(placeholder());
    }
    figure.append(h("figcaption", {}, h("span", { class: "muted" }, `${label}: `),
      fileLink(path, { newTab: true }, name)));
    return figure;
  }));
}

function paramsTable(task, registry) {
  if (hasSteps(task, registry.get(task.tool))) {
    return h("ol", { class: "param-steps" }, (task.params.steps || []).map((s) =>
      h("li", {}, h("strong", {}, registry.title(s.tool)), " ", paramChips(s.params))));
  }
  return paramChips(task.params || {});
}

async function fetchTask(root, uid, signal) {
  try {
    return await api(`api/v1/tasks/${uid}`, { signal });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    setTitle("Task not found");
    fill(root, h("h1", { tabindex: "-1" }, "Task not found"),
      errorBox(err.message, { title: "404" }),
      h("p", {}, h("a", { href: "#/tasks" }, "Back to the tasks")));
    return null;
  }
}

/** "Copy as curl": the clipboard, or the command selected when the page may not write there. */
function copyControls() {
  const curlPre = h("pre", { class: "curl", tabindex: "0" });
  const copyStatus = h("span", { class: "copy-status", role: "status" });
  const curlDetails = h("details", { class: "curl-details" }, h("summary", {}, "curl command"), curlPre);
  const copyButton = h("button", { type: "button", class: "secondary", onclick: async () => {
    try {
      await navigator.clipboard.writeText(curlPre.textContent);
      copyStatus.textContent = "Copied the curl command.";
    } catch {
      curlDetails.open = true;
      const range = document.createRange();
      range.selectNodeContents(curlPre);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copyStatus.textContent = "Press Ctrl+C to copy the selected command.";
    }
  } }, "Copy as curl");
  return { curlPre, copyStatus, curlDetails, copyButton };
}

/** The parts of the task page, laid out; update(t) fills them. */
function taskPage(root, task) {
  const p = {
    title: h("h1", { tabindex: "-1" }),
    statusLine: h("p", { class: "status-line", role: "status", "aria-live": "polite" }),
    meta: h("dl", { class: "meta" }),
    inputs: h("section", { class: "inputs-view", "aria-labelledby": "inputs-title" }),
    failure: h("div", {}),
    result: h("section", { class: "result", "aria-labelledby": "result-title" }),
    params: h("section", { class: "params-view", "aria-labelledby": "params-title" }),
    rawPre: h("pre", { class: "json", tabindex: "0" }),
    ...copyControls(),
  };
  fill(root,
    h("p", { class: "crumbs" }, h("a", { href: "#/tasks" }, "← Tasks")),
    h("div", { class: "task-head" }, p.title, p.statusLine),
    p.meta,
    h("div", { class: "actions" }, p.copyButton, p.copyStatus,
      h("a", { class: "button secondary", href: `#/new/${task.tool}` }, "New task with this tool")),
    p.curlDetails,
    h("details", { class: "raw" }, h("summary", {}, "Raw JSON"), p.rawPre),
    p.failure, p.inputs, p.result, p.params);
  return p;
}

function showResult(section, t, registry) {
  section.hidden = t.status === "error";
  if (t.status === "error") {
    fill(section);
    return;
  }
  fill(section, h("h2", { id: "result-title" }, "Result"), t.status === "done"
    ? renderResult(t.tool, t.result_data || {}, t.result_files || [], t, registry)
    : h("p", { class: "muted waiting" }, t.status === "queued"
      ? "Waiting for a worker… this page updates by itself."
      : "A worker is on it… this page updates by itself."));
}

function updater(p, registry) {
  let shownStatus = null;
  const pair = (term, value) => h("div", {}, h("dt", {}, term), " ", h("dd", {}, value));
  const update = (t) => {
    const tool = registry.get(t.tool);
    fill(p.meta,
      pair("Task", h("code", {}, t.uid)),
      pair("Created", timeEl(t.created_at)),
      pair("Updated", timeEl(t.updated_at)),
      TERMINAL.has(t.status) ? pair("Took", duration(t.created_at, t.updated_at)) : null);
    p.rawPre.textContent = JSON.stringify(t, null, 2);
    p.curlPre.textContent = curlFor(t, tool);
    if (t.status === shownStatus) return;
    // below: only when the status changes (the status line is a live region)
    shownStatus = t.status;
    setTitle(`${registry.title(t.tool)} ${t.uid.slice(0, 8)} (${t.status})`);
    fill(p.title, registry.title(t.tool), " ", h("span", { class: "uid" }, t.uid.slice(0, 8)));
    fill(p.statusLine, "Status: ", statusBadge(t.status),
      TERMINAL.has(t.status) ? null : h("span", { class: "spinner", "aria-hidden": "true" }));
    fill(p.failure, t.status === "error"
      ? errorBox(t.error || "The task failed without a message.", { title: "The task failed" }) : []);
    fill(p.inputs, h("h2", { id: "inputs-title" }, "Inputs"), thumbnails(t, tool));
    fill(p.params, h("h2", { id: "params-title" }, "Parameters"), paramsTable(t, registry));
    showResult(p.result, t, registry);
  };
  update.forget = () => {
    shownStatus = null;
  };
  return update;
}

export async function viewTask(root, [uid], signal) {
  const registryPromise = loadRegistry().catch(() => EMPTY_REGISTRY);
  let task = await fetchTask(root, uid, signal);
  if (!task) return;
  const registry = await registryPromise;
  const p = taskPage(root, task);
  const update = updater(p, registry);
  update(task);

  // live status: poll (in the background) until the task ends or the page changes
  (async () => {
    let delay = 250;
    while (!TERMINAL.has(task.status) && !signal.aborted) {
      await sleep(delay, signal);
      if (signal.aborted) return;
      delay = Math.min(delay * 1.5, 2000);
      try {
        task = await api(`api/v1/tasks/${uid}`, { signal });
        update(task);
      } catch (err) {
        if (signal.aborted) return;
        fill(p.statusLine, "Status: ", statusBadge(task.status),
          h("span", { class: "muted" }, ` (cannot refresh: ${err.message})`));
        update.forget(); // redraw once the server answers again
      }
    }
  })();
}
