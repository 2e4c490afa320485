// AeroVision web UI: #/accounts[?page=N] — admins only: the accounts, 20 a page, a new
// account (login, password, type, description) and deleting one (with everything it owns).
import { ApiError, api } from "../api.js";
import { errorBox, fill, h, setTitle, timeEl } from "../dom.js";
import { ACCOUNT_TYPES, currentAccount, isAdmin } from "../session.js";

export const PAGE_SIZE = 20;
const DEFAULT_ACCOUNT_ID = "00000000-0000-0000-0000-000000000000";
const MIN_PASSWORD = 8;

const TYPE_NOTES = {
  user: "its own data",
  advanced_user: "may also read every account's data",
  admin: "also manages accounts",
};

function accountForm(onCreated) {
  const fieldError = h("p", { class: "field-error", id: "account-password-err", hidden: true });
  const errors = h("div", { class: "alert error", role: "alert", hidden: true });
  const input = (id, attrs) => h("input", { id, name: id, ...attrs });
  const form = h("form", { class: "card account-form", novalidate: true, "aria-labelledby": "account-form-title" },
    h("h2", { id: "account-form-title" }, "New account"),
    h("div", { class: "field" }, h("label", { for: "account-login" }, "Login"),
      input("account-login", { type: "text", required: true, autocomplete: "off", autocapitalize: "none",
        spellcheck: "false", placeholder: "alice@example.com" })),
    h("div", { class: "field" }, h("label", { for: "account-password" }, "Password"),
      input("account-password", { type: "password", required: true, autocomplete: "new-password",
        minlength: String(MIN_PASSWORD), "aria-describedby": "account-password-hint account-password-err" }),
      h("p", { class: "hint", id: "account-password-hint" }, `${MIN_PASSWORD} characters or more.`), fieldError),
    h("div", { class: "field" }, h("label", { for: "account-type" }, "Type"),
      h("select", { id: "account-type", name: "account-type" }, Object.entries(ACCOUNT_TYPES).map(([value, text]) =>
        h("option", { value }, `${text}: ${TYPE_NOTES[value]}`)))),
    h("div", { class: "field" }, h("label", { for: "account-description" }, "Description ", h("span", { class: "muted" }, "(optional)")),
      input("account-description", { type: "text", maxlength: "1000" })),
    errors,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Create account")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.hidden = true;
    fieldError.hidden = true;
    const value = (id) => form.elements[id].value;
    const login = value("account-login").trim();
    if (!login) {
      fill(errors, h("strong", {}, "Not created: "), "Enter a login.");
      errors.hidden = false;
      form.elements["account-login"].focus();
      return;
    }
    if (value("account-password").length < MIN_PASSWORD) {
      fieldError.textContent = `The password needs ${MIN_PASSWORD} characters or more.`;
      fieldError.hidden = false;
      form.elements["account-password"].focus();
      return;
    }
    try {
      const account = await api("api/v1/accounts", { method: "POST", json: {
        login, password: value("account-password"), account_type: value("account-type"),
        description: value("account-description").trim(),
      } });
      form.reset();
      await onCreated(account);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fill(errors, h("strong", {}, "Not created: "), h("span", { class: "message" }, err.message));
      errors.hidden = false;
    }
  });
  return form;
}

/** "Delete", then "Yes, delete <login> and everything it owns" / "Cancel". */
function deleteControls(account, ctx) {
  const confirmBox = h("span", { class: "confirm", hidden: true });
  const remove = h("button", { type: "button", class: "danger small", "aria-label": `Delete ${account.login}`, onclick: () => {
    remove.hidden = true;
    confirmBox.hidden = false;
    confirmBox.querySelector("button").focus();
  } }, "Delete");
  const yes = h("button", { type: "button", class: "danger small", "aria-label": `Yes, delete ${account.login}`,
    onclick: async () => {
      try {
        await api(`api/v1/accounts/${encodeURIComponent(account.account_id)}`, { method: "DELETE" });
        ctx.say(`Deleted ${account.login}.`);
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) ctx.say(`Not deleted: ${err.message}`);
      }
      await ctx.refresh();
    } }, "Yes, delete it and everything it owns");
  const cancel = h("button", { type: "button", class: "secondary small", onclick: () => {
    confirmBox.hidden = true;
    remove.hidden = false;
    remove.focus();
  } }, "Cancel");
  confirmBox.append(yes, " ", cancel);
  return [remove, confirmBox];
}

function accountRow(account, ctx) {
  const own = account.account_id === currentAccount()?.account_id;
  const kept = account.account_id === DEFAULT_ACCOUNT_ID;
  return h("tr", { dataset: { id: account.account_id } },
    h("td", { class: "login" }, account.login, own ? h("span", { class: "badge this-session" }, "you") : null),
    h("td", {}, ACCOUNT_TYPES[account.account_type] || account.account_type),
    h("td", { class: "description" }, account.description),
    h("td", { class: "when" }, timeEl(account.created_at)),
    h("td", { class: "row-actions" }, own || kept
      ? h("span", { class: "muted" }, own ? "your account" : "kept: holds what was made without accounts")
      : deleteControls(account, ctx)));
}

function pager(data, page) {
  const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
  const first = (page - 1) * PAGE_SIZE + 1;
  const last = Math.min(data.total, first + data.accounts.length - 1);
  return h("nav", { class: "pager", "aria-label": "Pages" },
    page > 1 ? h("a", { href: `#/accounts?page=${page - 1}`, rel: "prev" }, "← Previous") : h("span", { class: "muted" }, "← Previous"),
    h("span", {}, data.accounts.length ? `${first}–${last} of ${data.total}` : `page ${page} of ${pages}`),
    page < pages ? h("a", { href: `#/accounts?page=${page + 1}`, rel: "next" }, "Next →") : h("span", { class: "muted" }, "Next →"));
}

function accountsTable(data, page, ctx) {
  return h("div", {},
    h("div", { class: "table-wrap" }, h("table", { class: "accounts" },
      h("caption", { class: "visually-hidden" }, "Accounts, oldest first"),
      h("thead", {}, h("tr", {}, ["Login", "Type", "Description", "Created", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, data.accounts.map((a) => accountRow(a, ctx))))),
    pager(data, page));
}

export async function viewAccounts(root, [pageArg], signal) {
  setTitle("Accounts");
  if (!isAdmin()) {
    fill(root, h("h1", { tabindex: "-1" }, "Accounts"),
      errorBox("Only an admin account may manage accounts.", { title: "Not allowed" }));
    return;
  }
  const page = Math.max(1, Number.parseInt(pageArg || "1", 10) || 1);
  const listHolder = h("div", {});
  const listStatus = h("p", { class: "visually-hidden", role: "status" });
  const ctx = {
    say: (text) => {
      listStatus.textContent = text;
    },
    refresh: async () => {
      const data = await api(`api/v1/accounts?offset=${(page - 1) * PAGE_SIZE}&limit=${PAGE_SIZE}`, { signal });
      fill(listHolder, accountsTable(data, page, ctx));
    },
  };
  const form = accountForm(async (account) => {
    await ctx.refresh();
    ctx.say(`Created ${account.login}.`);
  });
  fill(root,
    h("h1", { tabindex: "-1" }, "Accounts"),
    h("p", { class: "lead" }, "Each account sees only its own tasks, files, webhooks and settings. Deleting an account removes everything it owns, files included."),
    h("section", { "aria-labelledby": "accounts-title" }, h("h2", { id: "accounts-title" }, "All accounts"), listStatus, listHolder),
    form);
  await ctx.refresh();
}
