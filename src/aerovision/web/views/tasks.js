// AeroVision web UI: #/tasks[?page=N] — 20 tasks a page, newest first, with live statuses
// and each done task's one-line result (its tool's result_line).
import { api } from "../api.js";
import { basename, fill, h, setTitle, sleep, statusBadge, timeEl } from "../dom.js";
import { loadRegistry, resultLine } from "../registry.js";
import { TERMINAL } from "./task.js";

export const PAGE_SIZE = 20;

function taskSummary(t, registry) {
  if (t.status === "error") return t.error || "failed";
  if (t.status !== "done") return "";
  return resultLine(registry.get(t.tool), t.result_data);
}

function pager(data, page) {
  const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
  const first = (page - 1) * PAGE_SIZE + 1;
  const last = Math.min(data.total, first + data.tasks.length - 1);
  return h("nav", { class: "pager", "aria-label": "Pages" },
    page > 1 ? h("a", { href: `#/tasks?page=${page - 1}`, rel: "prev" }, "← Newer") : h("span", { class: "muted" }, "← Newer"),
    h("span", {}, data.tasks.length ? `${first}–${last} of ${data.total}` : `page ${page} of ${pages}`),
    page < pages ? h("a", { href: `#/tasks?page=${page + 1}`, rel: "next" }, "Older →") : h("span", { class: "muted" }, "Older →"));
}

function taskRow(t, registry) {
  const link = h("a", { href: `#/tasks/${t.uid}`, class: "task-link" }, h("code", {}, t.uid.slice(0, 8)));
  const tr = h("tr", { class: "clickable" },
    h("td", {}, link),
    h("td", {}, registry.title(t.tool)),
    h("td", {}, statusBadge(t.status)),
    h("td", { class: "files" }, (t.input_files || []).map(basename).join(" + ")),
    h("td", { class: "summary" }, taskSummary(t, registry)),
    h("td", { class: "when" }, timeEl(t.created_at)));
  tr.addEventListener("click", (e) => {
    if (e.target.closest("a")) return;
    if (getSelection()?.toString()) return;
    location.hash = `#/tasks/${t.uid}`;
  });
  return tr;
}

function tasksTable(data, page, registry) {
  if (!data.total) return h("p", {}, "No tasks yet. ", h("a", { href: "#/new" }, "Start one"), ".");
  return h("div", {},
    h("div", { class: "table-wrap" }, h("table", { class: "tasks" },
      h("caption", { class: "visually-hidden" }, "Tasks, newest first"),
      h("thead", {}, h("tr", {},
        ["Task", "Tool", "Status", "Files", "Result", "Created"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, data.tasks.map((t) => taskRow(t, registry))))),
    pager(data, page));
}

export async function viewTasks(root, [pageArg], signal) {
  setTitle("Tasks");
  const page = Math.max(1, Number.parseInt(pageArg || "1", 10) || 1);
  const registry = await loadRegistry();
  const body = h("div", {});
  const live = h("p", { class: "visually-hidden", role: "status" });
  fill(root, h("div", { class: "title-row" }, h("h1", { tabindex: "-1" }, "Tasks"),
    h("a", { class: "button primary", href: "#/new" }, "New task")), live, body);

  let lastKey = null;
  const load = async () => {
    const data = await api(`api/v1/tasks?offset=${(page - 1) * PAGE_SIZE}&limit=${PAGE_SIZE}`, { signal });
    const key = JSON.stringify(data.tasks.map((t) => [t.uid, t.status]).concat([data.total]));
    if (key !== lastKey) {
      if (lastKey !== null) live.textContent = "The list was updated.";
      lastKey = key;
      fill(body, tasksTable(data, page, registry));
    }
    return data.tasks.some((t) => !TERMINAL.has(t.status));
  };
  let active = await load();
  // keep the statuses live: often while some task on the page runs, now and then otherwise
  (async () => {
    while (!signal.aborted) {
      await sleep(active ? 1000 : 5000, signal);
      if (signal.aborted) return;
      try {
        active = await load();
      } catch {
        active = false; // try again later
      }
    }
  })();
}
