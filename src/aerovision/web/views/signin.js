// AeroVision web UI: the sign-in page, shown for any page while the server needs
// credentials and this tab has none (or the server refused them: `note` says why).
//   accounts mode: login and password → a session token (session.js)
//   keys mode:     the API key
import { ApiError, mode } from "../api.js";
import { fill, h, setTitle } from "../dom.js";
import { SESSION_HOURS, signInWithKey, signInWithPassword } from "../session.js";

function field(id, label, attrs, hint) {
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name: id, required: true, ...attrs, "aria-describedby": hint ? `${id}-hint` : null }),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

function noteBox(note) {
  if (!note) return null;
  return note.error
    ? h("div", { class: "alert error", role: "alert" }, h("strong", {}, "Signed out: "), h("span", { class: "message" }, note.message))
    : h("p", { class: "alert info", role: "status" }, note.message);
}

/** The form's fields for the server's mode, and how to read them. */
function fieldsFor(accounts) {
  if (accounts) {
    return {
      fields: [
        field("signin-login", "Login", { type: "text", autocomplete: "username", autocapitalize: "none",
          spellcheck: "false", "data-autofocus": true }),
        field("signin-password", "Password", { type: "password", autocomplete: "current-password" },
          `Signing in makes a token for this browser tab that lasts ${SESSION_HOURS} hours; the password is not kept.`),
      ],
      submit: (form) => signInWithPassword(form.elements["signin-login"].value.trim(), form.elements["signin-password"].value),
    };
  }
  return {
    fields: [field("signin-key", "API key", { type: "password", autocomplete: "current-password",
      spellcheck: "false", "data-autofocus": true },
    "One of the server's AEROVISION_API_KEYS. It is kept for this browser tab only.")],
    submit: (form) => signInWithKey(form.elements["signin-key"].value.trim()),
  };
}

export async function viewSignIn(root, [note, onSignedIn]) {
  setTitle("Sign in");
  const accounts = mode() === "accounts";
  const { fields, submit } = fieldsFor(accounts);
  const errors = h("div", { class: "alert error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  // method=post: even if the script failed, nothing typed here would go into a URL
  const form = h("form", { class: "card signin-form", method: "post", novalidate: true, "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title", tabindex: "-1" }, "Sign in"),
    h("p", { class: "lead" }, accounts ? "This server has accounts: sign in with yours."
      : "This server needs an API key."),
    noteBox(note), fields, errors,
    h("div", { class: "row" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    errors.hidden = true;
    const empty = [...form.querySelectorAll("input[required]")].find((i) => !i.value.trim());
    if (empty) {
      fill(errors, h("strong", {}, "Not signed in: "), `Enter the ${form.querySelector(`label[for="${empty.id}"]`).textContent.toLowerCase()}.`);
      errors.hidden = false;
      empty.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Signing in…";
    try {
      await submit(form);
      onSignedIn();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      fill(errors, h("strong", {}, "Not signed in: "), h("span", { class: "message" }, err.message));
      errors.hidden = false;
      const again = form.querySelector(accounts ? "#signin-password" : "#signin-key");
      again.select();
      again.focus();
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  });
  fill(root, h("div", { class: "signin" }, form));
}
