// AeroVision web UI: #/libraries[?page=N] — the account's image libraries, 20 a page
// (name, description, image count), a new library (name, description) and deleting one
// (with its images).
import { ApiError, api } from "../api.js";
import { fill, h, setTitle, timeEl } from "../dom.js";

export const PAGE_SIZE = 20;
/** The server's rule for a library's name (LibraryIn in the API's schemas). */
export const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
export const MAX_DESCRIPTION = 4096;

export const libraryPath = (library) => `api/v1/libraries/${encodeURIComponent(library.library_id)}`;

export const imagesText = (count) => `${count} image${count === 1 ? "" : "s"}`;

/** Why `name` is not a library name ("" when it is one). */
export function nameProblem(name) {
  if (!name) return "Enter a name.";
  if (name.length > 64) return `At most 64 characters (this one has ${name.length}).`;
  if (!NAME.test(name)) return "Only letters A–Z and a–z, digits, “_”, “.” and “-”; no spaces.";
  return "";
}

/** The "New library" form; onCreated(library) after the server made it. */
function libraryForm(onCreated) {
  const name = h("input", { id: "library-name", name: "name", type: "text", required: true, maxlength: "64",
    autocomplete: "off", autocapitalize: "none", spellcheck: "false", placeholder: "parts",
    "aria-describedby": "library-name-hint library-name-err" });
  const nameError = h("p", { class: "field-error", id: "library-name-err", hidden: true });
  const description = h("input", { id: "library-description", name: "description", type: "text",
    maxlength: String(MAX_DESCRIPTION) });
  const errors = h("div", { class: "alert error", role: "alert", hidden: true });
  const form = h("form", { class: "card library-form", novalidate: true, "aria-labelledby": "library-form-title" },
    h("h2", { id: "library-form-title" }, "New library"),
    h("div", { class: "field" }, h("label", { for: "library-name" }, "Name"), name,
      h("p", { class: "hint", id: "library-name-hint" },
        "1–64 characters: letters, digits, “_”, “.” and “-”. Unique among your libraries."),
      nameError),
    h("div", { class: "field" }, h("label", { for: "library-description" }, "Description ",
      h("span", { class: "muted" }, "(optional)")), description),
    errors,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Create library")));

  const showNameError = (message) => {
    nameError.textContent = message;
    nameError.hidden = !message;
    name.setAttribute("aria-invalid", message ? "true" : "false");
  };
  name.addEventListener("input", () => {
    if (!nameError.hidden) showNameError(nameProblem(name.value.trim()));
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.hidden = true;
    const value = name.value.trim();
    const problem = nameProblem(value);
    showNameError(problem);
    if (problem) {
      name.focus();
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const library = await api("api/v1/libraries", { method: "POST",
        json: { name: value, description: description.value.trim() } });
      form.reset();
      await onCreated(library);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const onName = err.errors.find((e) => e.field === "name");
      if (onName) showNameError(onName.msg);
      fill(errors, h("strong", {}, "Not created: "), h("span", { class: "message" }, err.message));
      errors.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/**
 * "Delete", then "Yes, delete <name> and its images" / "Cancel". onDeleted(message) once the
 * library is gone (or was already), onRefused(message) when the server kept it; current()
 * is the library as last fetched (for its image count).
 */
export function deleteLibraryControls(library, { onDeleted, onRefused, small = true, current = () => library }) {
  const size = small ? " small" : "";
  const confirmBox = h("span", { class: "confirm", hidden: true });
  const remove = h("button", { type: "button", class: `danger${size}`, "aria-label": `Delete ${library.name}`,
    onclick: () => {
      yes.textContent = `Yes, delete it and its ${imagesText(current().image_count)}`; // as many as now
      remove.hidden = true;
      confirmBox.hidden = false;
      confirmBox.querySelector("button").focus();
    } }, small ? "Delete" : "Delete library");
  const yes = h("button", { type: "button", class: `danger${size}`,
    "aria-label": `Yes, delete ${library.name} and its images`, onclick: async () => {
      yes.disabled = true;
      try {
        await api(libraryPath(library), { method: "DELETE" });
        await onDeleted(`Deleted ${library.name}.`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) await onDeleted(`${library.name} was already deleted.`);
        else await onRefused(`Not deleted: ${err.message}`);
      } finally {
        yes.disabled = false;
      }
    } }, `Yes, delete it and its ${imagesText(library.image_count)}`);
  const cancel = h("button", { type: "button", class: `secondary${size}`, onclick: () => {
    confirmBox.hidden = true;
    remove.hidden = false;
    remove.focus();
  } }, "Cancel");
  confirmBox.append(yes, " ", cancel);
  return [remove, confirmBox];
}

function libraryRow(library, ctx) {
  const done = async (message) => {
    ctx.say(message);
    await ctx.refresh();
  };
  return h("tr", { dataset: { id: library.library_id } },
    h("td", { class: "name" }, h("a", { href: `#/libraries/${library.library_id}` }, library.name)),
    h("td", { class: "description" }, library.description),
    h("td", { class: "num" }, String(library.image_count)),
    h("td", { class: "when" }, timeEl(library.created_at)),
    h("td", { class: "row-actions" }, deleteLibraryControls(library, { onDeleted: done, onRefused: done })));
}

function pager(data, page) {
  const pages = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
  const first = (page - 1) * PAGE_SIZE + 1;
  const last = Math.min(data.total, first + data.libraries.length - 1);
  return h("nav", { class: "pager", "aria-label": "Pages" },
    page > 1 ? h("a", { href: `#/libraries?page=${page - 1}`, rel: "prev" }, "← Previous") : h("span", { class: "muted" }, "← Previous"),
    h("span", {}, data.libraries.length ? `${first}–${last} of ${data.total}` : `page ${page} of ${pages}`),
    page < pages ? h("a", { href: `#/libraries?page=${page + 1}`, rel: "next" }, "Next →") : h("span", { class: "muted" }, "Next →"));
}

function librariesTable(data, page, ctx) {
  if (!data.total) return h("p", { class: "muted empty" }, "No libraries yet: create one below.");
  return h("div", {},
    h("div", { class: "table-wrap" }, h("table", { class: "libraries" },
      h("caption", { class: "visually-hidden" }, "Libraries, oldest first"),
      h("thead", {}, h("tr", {}, ["Name", "Description", "Images", "Created", "Actions"].map((c) =>
        h("th", { scope: "col", class: c === "Images" ? "num" : null }, c)))),
      h("tbody", {}, data.libraries.map((l) => libraryRow(l, ctx))))),
    pager(data, page));
}

export async function viewLibraries(root, [pageArg], signal) {
  setTitle("Libraries");
  const page = Math.max(1, Number.parseInt(pageArg || "1", 10) || 1);
  const listHolder = h("div", {});
  const listStatus = h("p", { class: "visually-hidden", role: "status" });
  const ctx = {
    say: (text) => {
      listStatus.textContent = text;
    },
    refresh: async () => {
      const data = await api(`api/v1/libraries?offset=${(page - 1) * PAGE_SIZE}&limit=${PAGE_SIZE}`, { signal });
      fill(listHolder, librariesTable(data, page, ctx));
    },
  };
  const form = libraryForm(async (library) => {
    location.hash = `#/libraries/${library.library_id}`; // its page: add its images there
  });
  fill(root,
    h("h1", { tabindex: "-1" }, "Libraries"),
    h("p", { class: "lead" }, "A library holds reference images; a search with a new picture says which of them it shows — the same picture, an object in it (with its outline), or a look-alike."),
    h("section", { "aria-labelledby": "libraries-title" }, h("h2", { id: "libraries-title" }, "Your libraries"), listStatus, listHolder),
    form);
  await ctx.refresh();
}
