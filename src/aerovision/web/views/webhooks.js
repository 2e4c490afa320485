// AeroVision web UI: #/webhooks — add a receiver, list them, see each one's recent
// deliveries, delete one.
import { ApiError, api } from "../api.js";
import { errorBox, fill, h, loading, setTitle, timeEl } from "../dom.js";

const hookPath = (hook) => `api/v1/webhooks/${encodeURIComponent(hook.id)}`;

/** The "Add a webhook" form; onAdded(hook) after the server took it. */
function hookForm(onAdded) {
  const url = h("input", { id: "hook-url", name: "url", type: "url", required: true,
    placeholder: "https://example.com/callback", autocomplete: "url", "aria-describedby": "hook-url-err" });
  const secret = h("input", { id: "hook-secret", name: "secret", type: "password", autocomplete: "new-password",
    "aria-describedby": "hook-secret-hint" });
  const urlError = h("p", { class: "field-error", id: "hook-url-err", hidden: true });
  const formErrors = h("div", { class: "alert error", role: "alert", hidden: true });
  const form = h("form", { class: "card hook-form", novalidate: true, "aria-labelledby": "add-hook-title" },
    h("h2", { id: "add-hook-title" }, "Add a webhook"),
    h("div", { class: "field" }, h("label", { for: "hook-url" }, "URL"), url, urlError),
    h("div", { class: "field" }, h("label", { for: "hook-secret" }, "Secret ", h("span", { class: "muted" }, "(optional)")),
      secret,
      h("p", { class: "hint", id: "hook-secret-hint" },
        "With a secret, each POST carries X-Webhook-Signature: sha256=<HMAC of the body>. It is never shown again.")),
    formErrors,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Add webhook")));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formErrors.hidden = true;
    urlError.hidden = true;
    url.removeAttribute("aria-invalid");
    const value = url.value.trim();
    if (!/^https?:\/\/[^/?#\s]+/i.test(value)) {
      urlError.textContent = "Enter an http:// or https:// URL.";
      urlError.hidden = false;
      url.setAttribute("aria-invalid", "true");
      url.focus();
      return;
    }
    const body = { url: value };
    if (secret.value) body.secret = secret.value;
    try {
      const hook = await api("api/v1/webhooks", { method: "POST", json: body });
      form.reset();
      await onAdded(hook);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fill(formErrors, h("strong", {}, "Not added: "), err.message);
      formErrors.hidden = false;
    }
  });
  return form;
}

function deliveryRow(d) {
  return h("tr", {},
    h("td", {}, h("span", { class: `badge delivery-${d.status}` }, d.status)),
    h("td", {}, d.event),
    h("td", {}, h("a", { href: `#/tasks/${d.task_uid}` }, h("code", {}, d.task_uid.slice(0, 8)))),
    h("td", { class: "num" }, String(d.attempts)),
    h("td", {}, d.response_code ? `HTTP ${d.response_code}` : "", d.error ? h("span", { class: "muted" }, ` ${d.error}`) : ""),
    h("td", { class: "when" }, timeEl(d.delivered_at || d.created_at),
      d.status === "pending" && d.next_attempt_at ? h("span", { class: "muted" }, " · next ", timeEl(d.next_attempt_at)) : null));
}

async function showDeliveries(hook, holder, signal) {
  fill(holder, loading("Loading deliveries…"));
  let list;
  try {
    list = await api(`${hookPath(hook)}/deliveries`, { signal });
  } catch (err) {
    fill(holder, errorBox(err.message));
    return;
  }
  const again = h("button", { type: "button", class: "link-button", onclick: () => showDeliveries(hook, holder, signal) }, "Refresh");
  if (!list.length) {
    fill(holder, h("p", { class: "muted" }, "No deliveries yet: one is made each time a task ends. ", again));
    return;
  }
  fill(holder, h("table", { class: "deliveries-table" },
    h("caption", {}, `Recent deliveries to ${hook.url} `, again),
    h("thead", {}, h("tr", {}, ["Status", "Event", "Task", "Attempts", "Answer", "When"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, list.map(deliveryRow))));
}

/** "Delete", then "Yes, delete" / "Cancel". */
function deleteControls(hook, ctx) {
  const confirmBox = h("span", { class: "confirm", hidden: true });
  const deleteButton = h("button", { type: "button", class: "danger small",
    "aria-label": `Delete ${hook.url}`, onclick: () => {
      deleteButton.hidden = true;
      confirmBox.hidden = false;
      confirmBox.querySelector("button").focus();
    } }, "Delete");
  const yes = h("button", { type: "button", class: "danger small", "aria-label": `Yes, delete ${hook.url}`,
    onclick: async () => {
      try {
        await api(hookPath(hook), { method: "DELETE" });
        ctx.say(`Deleted ${hook.id}.`);
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) ctx.say(`Not deleted: ${err.message}`);
      }
      await ctx.refresh();
      ctx.focusForm();
    } }, "Yes, delete");
  const cancel = h("button", { type: "button", class: "secondary small", onclick: () => {
    confirmBox.hidden = true;
    deleteButton.hidden = false;
    deleteButton.focus();
  } }, "Cancel");
  confirmBox.append(yes, " ", cancel);
  return [deleteButton, confirmBox];
}

function hookRows(hook, ctx) {
  const deliveriesRow = h("tr", { class: "deliveries-row", hidden: true },
    h("td", { colspan: "4" }, h("div", { class: "deliveries" })));
  const deliveriesButton = h("button", { type: "button", class: "secondary small", "aria-expanded": "false",
    "aria-label": `Deliveries of ${hook.url}`, onclick: async () => {
      const open = deliveriesRow.hidden;
      deliveriesRow.hidden = !open;
      deliveriesButton.setAttribute("aria-expanded", String(open));
      if (open) await showDeliveries(hook, deliveriesRow.querySelector(".deliveries"), ctx.signal);
    } }, "Deliveries");
  return [h("tr", { dataset: { id: hook.id } },
    h("td", { class: "url" }, hook.url),
    h("td", {}, h("code", {}, hook.id)),
    h("td", { class: "when" }, timeEl(hook.created_at)),
    h("td", { class: "row-actions" }, deliveriesButton, " ", deleteControls(hook, ctx))), deliveriesRow];
}

function hooksTable(hooks, ctx) {
  if (!hooks.length) return h("p", { class: "muted empty" }, "No webhooks registered.");
  return h("div", { class: "table-wrap" }, h("table", { class: "hooks" },
    h("caption", { class: "visually-hidden" }, "Registered webhooks"),
    h("thead", {}, h("tr", {}, ["URL", "ID", "Added", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, hooks.flatMap((hook) => hookRows(hook, ctx)))));
}

export async function viewWebhooks(root, _args, signal) {
  setTitle("Webhooks");
  const listHolder = h("div", {});
  const listStatus = h("p", { class: "visually-hidden", role: "status" });
  const ctx = {
    signal,
    say: (text) => {
      listStatus.textContent = text;
    },
    refresh: async () => fill(listHolder, hooksTable(await api("api/v1/webhooks", { signal }), ctx)),
    focusForm: () => form.querySelector("input").focus(),
  };
  const form = hookForm(async (hook) => {
    await ctx.refresh();
    ctx.say(`Added ${hook.id}.`);
  });
  fill(root,
    h("h1", { tabindex: "-1" }, "Webhooks"),
    h("p", { class: "lead" }, "Each task that ends (done or error) is POSTed as JSON to every URL here, with retries until it is answered with a 2xx."),
    form,
    h("section", { "aria-labelledby": "hooks-title" }, h("h2", { id: "hooks-title" }, "Registered"), listStatus, listHolder));
  await ctx.refresh();
}
