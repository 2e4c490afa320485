// AeroVision web UI: a hash-routed single page, native ES modules, no build step.
//   #/new[/<tool>]   new task        #/tasks[?page=N]  tasks list
//   #/tasks/<uid>    task view       #/settings        settings per tool
//   #/webhooks       webhooks            #/account         your account and tokens
//   #/accounts[?page=N]  accounts (admins)
//   #/libraries[?page=N] image libraries   #/libraries/<id>  a library: add, search, browse
// The tools, their forms and how their results read come from GET /api/v1/tools.
// With GET /health's "auth" at keys or accounts, every page is the sign-in page until
// this tab holds credentials (api.js, session.js); a 401 brings it back.
import { ApiError, loadAuthMode, mode, needsCredentials, session, whenUnauthorized } from "./api.js";
import { errorBox, fill, h, loading, setTitle } from "./dom.js";
import { releaseFiles } from "./files.js";
import { ACCOUNT_TYPES, checkSession, signOut } from "./session.js";
import { viewAccount } from "./views/account.js";
import { viewAccounts } from "./views/accounts.js";
import { viewLibraries } from "./views/libraries.js";
import { viewLibrary } from "./views/library.js";
import { viewNew } from "./views/new.js";
import { viewSettings } from "./views/settings.js";
import { viewSignIn } from "./views/signin.js";
import { viewTask } from "./views/task.js";
import { viewTasks } from "./views/tasks.js";
import { viewWebhooks } from "./views/webhooks.js";

const main = document.getElementById("main");

const ROUTES = [
  [/^#\/new(?:\/([a-z0-9_]+))?\/?$/, viewNew, "new"],
  [/^#\/tasks\/([0-9a-fA-F-]{8,})\/?$/, viewTask, "tasks"],
  [/^#\/tasks\/?(?:\?page=(\d+))?$/, viewTasks, "tasks"],
  [/^#\/libraries\/([0-9a-fA-F-]{36})\/?$/, viewLibrary, "libraries"],
  [/^#\/libraries\/?(?:\?page=(\d+))?$/, viewLibraries, "libraries"],
  [/^#\/settings\/?$/, viewSettings, "settings"],
  [/^#\/webhooks\/?$/, viewWebhooks, "webhooks"],
  [/^#\/account\/?$/, viewAccount, "account"],
  [/^#\/accounts\/?(?:\?page=(\d+))?$/, viewAccounts, "accounts"],
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

// ---------------------------------------------------------------- signed in or not

/** Why the sign-in page shows: {message, error} (the server's 401 detail, or "Signed out."). */
let signInNote = null;

const signedIn = () => !needsCredentials() || Boolean(session());

/** The header: the nav entries the session allows, who is signed in, and "Sign out". */
function showSession() {
  const stored = needsCredentials() ? session() : null;
  const account = stored?.account;
  const allowed = {
    "signed-in": signedIn(),
    account: mode() === "accounts" && Boolean(stored),
    admin: mode() === "accounts" && account?.account_type === "admin",
  };
  for (const item of document.querySelectorAll("nav.site li[data-needs]")) {
    item.hidden = !allowed[item.dataset.needs];
  }
  const box = document.querySelector(".site-header .session");
  box.hidden = !stored;
  const who = box.querySelector(".session-who");
  fill(who, !stored ? null : stored.kind === "key" ? "Signed in with an API key"
    : [h("span", { class: "visually-hidden" }, "Signed in as "), account?.login || "?"]);
  who.title = account && stored?.kind === "token" ? ACCOUNT_TYPES[account.account_type] || account.account_type : "";
}

let rerouting = false;
let showingSignIn = false;

/** Show the sign-in page (once, however many requests were refused together). */
function backToSignIn(note) {
  if (showingSignIn) return; // keep what is typed there
  signInNote = note;
  showSession();
  if (rerouting) return;
  rerouting = true;
  queueMicrotask(() => {
    rerouting = false;
    route();
  });
}

function signedInNow() {
  signInNote = null;
  showSession();
  route();
}

const signOutButton = document.querySelector(".site-header .sign-out");
signOutButton.addEventListener("click", async () => {
  signOutButton.disabled = true;
  await signOut();
  signOutButton.disabled = false;
  backToSignIn({ message: "Signed out.", error: false });
});

// ---------------------------------------------------------------- routing

let currentAbort = null;
let routed = 0;

async function route() {
  const hash = location.hash || "#/new";
  if (!location.hash) history.replaceState(null, "", "#/new");
  currentAbort?.abort();
  releaseFiles();
  const abort = new AbortController();
  currentAbort = abort;
  const found = signedIn() ? match(hash)
    : { view: viewSignIn, section: null, args: [signInNote, signedInNow] };
  showingSignIn = found.view === viewSignIn;
  markSection(found.section);
  fill(main, loading());
  main.setAttribute("aria-busy", "true");
  try {
    await found.view(main, found.args, abort.signal);
  } catch (err) {
    if (abort.signal.aborted) return;
    if (err instanceof ApiError && err.status === 401 && !signedIn()) return; // the sign-in page comes
    fill(main,
      h("h1", { tabindex: "-1" }, "Something went wrong"),
      errorBox(err instanceof ApiError ? err.message : String(err?.message || err)),
      h("p", {}, h("a", { href: "#/new" }, "Start a new task")));
    console.error(err);
  } finally {
    if (!abort.signal.aborted) {
      main.removeAttribute("aria-busy");
      const heading = main.querySelector("h1");
      const first = main.querySelector("[data-autofocus]"); // the sign-in page's first field
      const again = routed++ > 0;
      // move focus to the new page's heading (not on the first load: keep the skip link first)
      if (first) first.focus();
      else if (heading && again) heading.focus({ preventScroll: false });
    }
  }
}

// the skip link moves focus without touching the hash (the hash is the router's)
document.querySelector(".skip-link")?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", route);
whenUnauthorized((message) => backToSignIn({ message, error: true }));

async function start() {
  await loadAuthMode();
  if (needsCredentials()) {
    const refused = await checkSession();
    if (refused) signInNote = { message: refused, error: true };
  }
  showSession();
  await route();
}
start();
