// AeroVision web UI: #/account — the signed-in account, its tokens (each with its
// permissions, expiry and Revoke) and a new token: a permission picker, a description,
// an optional expiry and (advanced users and admins) the visibility. The new token's
// secret is shown once, with a Copy button; the page keeps it nowhere else.
import { ApiError, api, mode, session } from "../api.js";
import { errorBox, fill, h, setTitle, stats, timeEl } from "../dom.js";
import { ACCOUNT_TYPES, ACTIONS, heldPermissions } from "../session.js";

const tokenPath = (token) => `api/v1/tokens/${encodeURIComponent(token.token_id)}`;

// ---------------------------------------------------------------- the permission picker

/** An action's place in the columns: the usual four first, others after. */
const rank = (action) => (ACTIONS.includes(action) ? ACTIONS.indexOf(action) : ACTIONS.length);

function checkbox(attrs) {
  return h("input", { type: "checkbox", ...attrs });
}

/** A resource × action grid of checkboxes (`held`: {resource: [action, …]}, what the
 * signed-in account may give), with "all" for each row, each column and everything. */
export function permissionPicker(held, idPrefix = "perm") {
  const columns = [...new Set(Object.values(held).flat())].sort((a, b) => rank(a) - rank(b));
  const boxes = []; // {resource, action, input}
  const rowAll = new Map();
  const colAll = new Map();
  const everything = checkbox({ id: `${idPrefix}-all` });
  const sync = () => {
    const state = (list) => {
      const on = list.filter((b) => b.input.checked).length;
      return { checked: on === list.length, indeterminate: on > 0 && on < list.length };
    };
    for (const [r, input] of rowAll) Object.assign(input, state(boxes.filter((b) => b.resource === r)));
    for (const [a, input] of colAll) Object.assign(input, state(boxes.filter((b) => b.action === a)));
    Object.assign(everything, state(boxes));
  };
  const setAll = (list, on) => {
    for (const b of list) b.input.checked = on;
    sync();
  };
  everything.addEventListener("change", () => setAll(boxes, everything.checked));
  const head = h("tr", {}, h("th", { scope: "col" }, "Resource"), h("th", { scope: "col" }, "All"),
    columns.map((action) => {
      const all = checkbox({ "aria-label": `${action}: every resource`, class: "col-all" });
      colAll.set(action, all);
      all.addEventListener("change", () => setAll(boxes.filter((b) => b.action === action), all.checked));
      return h("th", { scope: "col" }, h("span", { class: "col-head" }, all, action));
    }));
  const rows = Object.entries(held).map(([resource, actions]) => {
    const all = checkbox({ "aria-label": `${resource}: every action` });
    rowAll.set(resource, all);
    all.addEventListener("change", () => setAll(boxes.filter((b) => b.resource === resource), all.checked));
    return h("tr", {}, h("th", { scope: "row" }, resource), h("td", {}, all), columns.map((action) => {
      if (!actions.includes(action)) return h("td", { class: "muted" }, h("span", { "aria-hidden": "true" }, "—"));
      const input = checkbox({ "aria-label": `${resource}: ${action}`, dataset: { resource, action }, onchange: sync });
      boxes.push({ resource, action, input });
      return h("td", {}, input);
    }));
  });
  const root = h("fieldset", { class: "permission-picker" },
    h("legend", {}, "Permissions"),
    h("div", { class: "check" }, everything, h("label", { for: `${idPrefix}-all` }, "Every permission")),
    h("div", { class: "table-wrap" }, h("table", { class: "permissions" },
      h("caption", { class: "visually-hidden" }, "Permissions by resource and action"),
      h("thead", {}, head), h("tbody", {}, rows))));
  return {
    root,
    /** {resource: [action, …]} of the checked boxes (resources with none left out). */
    read() {
      const out = {};
      for (const b of boxes) if (b.input.checked) (out[b.resource] ||= []).push(b.action);
      return out;
    },
    reset: () => setAll(boxes, false),
    focus: () => everything.focus(),
  };
}

/** "tasks: view, creation · settings: view", or "every permission" (all of `held`). */
export function permissionText(permissions, held) {
  const has = (r, a) => (permissions?.[r] || []).includes(a);
  if (Object.entries(held).every(([r, actions]) => actions.every((a) => has(r, a)))) return "every permission";
  const parts = Object.entries(permissions || {}).filter(([, a]) => a.length)
    .map(([r, a]) => `${r}: ${[...a].sort((x, y) => rank(x) - rank(y)).join(", ")}`);
  return parts.length ? parts.join(" · ") : "none";
}

// ---------------------------------------------------------------- the new token's secret, once

function secretBox(token, onDone) {
  const input = h("input", { id: "new-token-secret", type: "text", readonly: true, value: token.token,
    class: "secret", spellcheck: "false", autocomplete: "off", "aria-describedby": "new-token-warning" });
  const status = h("span", { class: "copy-status", role: "status" });
  const copy = h("button", { type: "button", class: "primary", onclick: async () => {
    try {
      await navigator.clipboard.writeText(input.value);
      status.textContent = "Copied the token.";
    } catch {
      input.select();
      status.textContent = "Press Ctrl+C to copy the selected token.";
    }
  } }, "Copy");
  const box = h("section", { class: "card secret-box", "aria-labelledby": "new-token-title", tabindex: "-1" },
    h("h3", { id: "new-token-title" }, `New token: ${token.description || token.token_id}`),
    h("p", { class: "alert warn", id: "new-token-warning" },
      h("strong", {}, "Copy it now: "), "this is the only time the secret is shown. It will not be shown again."),
    h("div", { class: "field" }, h("label", { for: "new-token-secret" }, "Secret"), input),
    h("div", { class: "row" }, copy, h("button", { type: "button", class: "secondary", onclick: () => {
      box.remove(); // the secret leaves the page
      onDone();
    } }, "Done"), status));
  return box;
}

// ---------------------------------------------------------------- the new token's form

function textField(id, label, attrs = {}, hint = null) {
  return h("div", { class: "field" }, h("label", { for: id }, label),
    h("input", { id, type: "text", ...attrs, "aria-describedby": hint ? `${id}-hint` : null }),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

/** Visibility (advanced users and admins): a token that reads every account's data needs the password. */
function visibilityFields(account) {
  if (account.account_type === "user") return { root: null, value: () => "account", password: () => null };
  const select = h("select", { id: "token-visibility", "aria-describedby": "token-visibility-hint" },
    h("option", { value: "account" }, "This account's data"),
    h("option", { value: "all" }, "Every account's data (read)"));
  const password = h("input", { id: "token-password", type: "password", autocomplete: "current-password" });
  const passwordField = h("div", { class: "field", hidden: true },
    h("label", { for: "token-password" }, "Your password"), password,
    h("p", { class: "hint" }, "This browser's sign-in sees this account's data only, so a token that sees every account's needs your password. It is not kept."));
  select.addEventListener("change", () => {
    passwordField.hidden = select.value !== "all";
  });
  return {
    root: [h("div", { class: "field" }, h("label", { for: "token-visibility" }, "Visibility"), select,
      h("p", { class: "hint", id: "token-visibility-hint" }, "Every account's data: the token may read (not change) what other accounts own.")),
    passwordField],
    value: () => select.value,
    password: () => (select.value === "all" ? password.value : null),
  };
}

function tokenForm(account, onCreated) {
  const picker = permissionPicker(heldPermissions(account), "token-perm");
  const visibility = visibilityFields(account);
  const errors = h("div", { class: "alert error", role: "alert", hidden: true });
  const form = h("form", { class: "card token-form", novalidate: true, "aria-labelledby": "token-form-title" },
    h("h2", { id: "token-form-title" }, "New token"),
    textField("token-description", "Description", { maxlength: "1000", placeholder: "line 3 camera" }),
    picker.root,
    h("div", { class: "field" }, h("label", { for: "token-expiry" }, "Expires ", h("span", { class: "muted" }, "(optional)")),
      h("input", { id: "token-expiry", type: "datetime-local", "aria-describedby": "token-expiry-hint" }),
      h("p", { class: "hint", id: "token-expiry-hint" }, "Your local time. Empty: the token never expires.")),
    visibility.root, errors,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Create token")));
  const fail = (message) => {
    fill(errors, h("strong", {}, "Not created: "), h("span", { class: "message" }, message));
    errors.hidden = false;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.hidden = true;
    const permissions = picker.read();
    if (!Object.keys(permissions).length) return fail("Pick at least one permission.");
    const expiry = form.elements["token-expiry"].value;
    const password = visibility.password();
    if (password === "") return fail("Enter your password for a token that sees every account's data.");
    const body = {
      description: form.elements["token-description"].value.trim(),
      expiration_time: expiry ? new Date(expiry).toISOString() : null,
      permissions,
      visibility_area: visibility.value(),
    };
    try {
      const token = await api("api/v1/tokens", { method: "POST", json: body,
        basic: password ? [account.login, password] : undefined });
      form.reset();
      picker.reset();
      await onCreated(token);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fail(err.message);
    }
  });
  return form;
}

// ---------------------------------------------------------------- the tokens list

function revokeControls(token, ctx) {
  const name = token.description || token.token_id;
  const confirmBox = h("span", { class: "confirm", hidden: true });
  const revoke = h("button", { type: "button", class: "danger small", "aria-label": `Revoke ${name}`, onclick: () => {
    revoke.hidden = true;
    confirmBox.hidden = false;
    confirmBox.querySelector("button").focus();
  } }, "Revoke");
  const yes = h("button", { type: "button", class: "danger small", "aria-label": `Yes, revoke ${name}`, onclick: async () => {
    try {
      await api(tokenPath(token), { method: "DELETE" });
      ctx.say(`Revoked ${name}.`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) ctx.say(`Not revoked: ${err.message}`);
    }
    await ctx.refresh();
  } }, "Yes, revoke");
  const cancel = h("button", { type: "button", class: "secondary small", onclick: () => {
    confirmBox.hidden = true;
    revoke.hidden = false;
    revoke.focus();
  } }, "Cancel");
  confirmBox.append(yes, " ", cancel);
  return [revoke, confirmBox];
}

function tokenRow(token, ctx) {
  const held = heldPermissions(ctx.account);
  const mine = token.token_id === session()?.token_id;
  const expired = token.expiration_time && new Date(`${token.expiration_time}Z`) <= new Date();
  return h("tr", { dataset: { id: token.token_id } },
    h("td", { class: "description" }, token.description || h("span", { class: "muted" }, "(no description)"),
      mine ? h("span", { class: "badge this-session" }, "this sign-in") : null),
    h("td", { class: "permissions-text" }, permissionText(token.permissions, held)),
    h("td", {}, token.visibility_area === "all" ? "every account" : "this account"),
    h("td", { class: "when" }, token.expiration_time ? timeEl(token.expiration_time) : "never",
      expired ? h("span", { class: "badge status-error" }, "expired") : null),
    h("td", { class: "when" }, timeEl(token.created_at)),
    h("td", { class: "row-actions" }, mine ? h("span", { class: "muted" }, "Sign out to revoke") : revokeControls(token, ctx)));
}

function tokensTable(tokens, ctx) {
  if (!tokens.length) return h("p", { class: "muted empty" }, "No tokens.");
  return h("div", { class: "table-wrap" }, h("table", { class: "tokens" },
    h("caption", { class: "visually-hidden" }, "Your tokens, oldest first"),
    h("thead", {}, h("tr", {}, ["Description", "Permissions", "Sees", "Expires", "Created", "Actions"]
      .map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, tokens.map((t) => tokenRow(t, ctx)))));
}

export async function viewAccount(root, _args, signal) {
  setTitle("Account");
  if (mode() !== "accounts") {
    fill(root, h("h1", { tabindex: "-1" }, "Account"),
      h("p", {}, "This server runs without accounts, so there are no tokens to manage here."));
    return;
  }
  const account = await api("api/v1/account", { signal });
  const listHolder = h("div", {});
  const secretHolder = h("div", {});
  const listStatus = h("p", { class: "visually-hidden", role: "status" });
  const ctx = {
    account,
    say: (text) => {
      listStatus.textContent = text;
    },
    refresh: async () => fill(listHolder, tokensTable(await api("api/v1/tokens", { signal }), ctx)),
  };
  const form = tokenForm(account, async (token) => {
    fill(secretHolder, secretBox(token, () => form.querySelector("input").focus()));
    await ctx.refresh();
    secretHolder.querySelector("#new-token-secret").focus();
  });
  fill(root,
    h("h1", { tabindex: "-1" }, "Account"),
    stats([["Login", account.login], ["Type", ACCOUNT_TYPES[account.account_type] || account.account_type],
      ["Created", timeEl(account.created_at)], account.description ? ["Description", account.description] : null]),
    h("section", { "aria-labelledby": "tokens-title" },
      h("h2", { id: "tokens-title" }, "Tokens"),
      h("p", { class: "lead" }, "A token carries some of this account's permissions, for a camera, a script or CI: send it as Authorization: Bearer <token>."),
      listStatus, listHolder, secretHolder, form));
  try {
    await ctx.refresh();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    fill(listHolder, errorBox(err.message));
  }
}
