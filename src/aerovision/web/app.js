// AeroVision web UI: a hash-routed single page, native ES modules, no build step.
//   #/new[/<tool>]   new task        #/tasks[?page=N]  tasks list
//   #/tasks/<uid>    task view       #/settings        settings per tool
//   #/webhooks       webhooks
// The tools, their forms and how their results read come from GET /api/v1/tools.
import { ApiError } from "./api.js";
import { errorBox, fill, h, loading, setTitle } from "./dom.js";
import { viewNew } from "./views/new.js";
import { viewSettings } from "./views/settings.js";
import { viewTask } from "./views/task.js";
import { viewTasks } from "./views/tasks.js";
import { viewWebhooks } from "./views/webhooks.js";

const main = document.getElementById("main");

const ROUTES = [
  [/^#\/new(?:\/([a-z0-9_]+))?\/?$/, viewNew, "new"],
  [/^#\/tasks\/([0-9a-fA-F-]{8,})\/?$/, viewTask, "tasks"],
  [/^#\/tasks\/?(?:\?page=(\d+))?$/, viewTasks, "tasks"],
  [/^#\/settings\/?$/, viewSettings, "settings"],
  [/^#\/webhooks\/?$/, viewWebhooks, "webhooks"],
];

function viewNotFound(root) {
  setTitle("Not found");
  fill(root,
    h("h1", { tabindex: "-1" }, "Page not found"),
    h("p", {}, "Nothing lives at ", h("code", {}, location.hash), ". ",
      h("a", { href: "#/new" }, "Start a new task"), " or ", h("a", { href: "#/tasks" }, "see the tasks"), "."));
}

function match(hash) {
  for (const [pattern, view, section] of ROUTES) {
    const m = pattern.exec(hash);
    if (m) return { view, section, args: m.slice(1) };
  }
  return { view: viewNotFound, section: null, args: [] };
}

function markSection(section) {
  for (const link of document.querySelectorAll("nav.site a[data-section]")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

let currentAbort = null;
let routed = 0;

async function route() {
  const hash = location.hash || "#/new";
  if (!location.hash) history.replaceState(null, "", "#/new");
  currentAbort?.abort();
  const abort = new AbortController();
  currentAbort = abort;
  const found = match(hash);
  markSection(found.section);
  fill(main, loading());
  main.setAttribute("aria-busy", "true");
  try {
    await found.view(main, found.args, abort.signal);
  } catch (err) {
    if (abort.signal.aborted) return;
    fill(main,
      h("h1", { tabindex: "-1" }, "Something went wrong"),
      errorBox(err instanceof ApiError ? err.message : String(err?.message || err)),
      h("p", {}, h("a", { href: "#/new" }, "Start a new task")));
    console.error(err);
  } finally {
    if (!abort.signal.aborted) {
      main.removeAttribute("aria-busy");
      const heading = main.querySelector("h1");
      // move focus to the new page's heading (not on the first load: keep the skip link first)
      if (heading && routed++ > 0) heading.focus({ preventScroll: false });
    }
  }
}

// the skip link moves focus without touching the hash (the hash is the router's)
document.querySelector(".skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", route);
route();
