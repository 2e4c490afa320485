// AeroVision web UI: signing in and out (keys and accounts mode; see api.js for how the
// one stored secret is sent). accounts: the login and password go to the server once,
// as Basic auth on POST /api/v1/tokens, which makes this browser's session token; only
// that token is kept. keys: the API key itself is kept.
import { ApiError, api, clearSession, mode, saveSession, session } from "./api.js";

/** Every resource and its actions (SPEC-accounts.md), in the order the UI shows them; what
 * the credentials hold comes from GET /api/v1/account ("permissions") when the server says. */
export const PERMISSIONS = {
  tasks: ["view", "creation", "deletion"],
  settings: ["view", "modification"],
  webhooks: ["view", "creation", "deletion"],
  libraries: ["view", "creation", "modification", "deletion"],
  recipes: ["view", "creation", "modification", "deletion"],
  analyze: ["creation"],
  events: ["view", "deletion"],
  tokens: ["view", "creation", "modification", "deletion"],
};
export const ACTIONS = ["view", "creation", "modification", "deletion"];

/** How long a sign-in lasts (the session token's expiry). */
export const SESSION_HOURS = 12;

export const ACCOUNT_TYPES = {
  user: "User",
  advanced_user: "Advanced user",
  admin: "Admin",
};

/** The signed-in account ({account_id, login, account_type, …}) or null. */
export const currentAccount = () => session()?.account || null;
export const isAdmin = () => mode() === "accounts" && currentAccount()?.account_type === "admin";

/** {resource: [action, …]}: what these credentials hold (GET /api/v1/account), in the
 * table's order, resources the table does not know last; the table itself when not said. */
export function heldPermissions(account) {
  const held = account?.permissions;
  if (!held || typeof held !== "object") return PERMISSIONS;
  const order = [...Object.keys(PERMISSIONS), ...Object.keys(held).filter((r) => !(r in PERMISSIONS))];
  const out = {};
  for (const r of order) {
    const actions = Array.isArray(held[r]) ? held[r] : [];
    const known = [...ACTIONS, ...actions.filter((a) => !ACTIONS.includes(a))];
    const sorted = known.filter((a) => actions.includes(a));
    if (sorted.length) out[r] = sorted;
  }
  return out;
}

const stamp = (date) => `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;

/** accounts mode: a session token for this browser holding every permission of the account,
 * made with the password (which is not kept). */
export async function signInWithPassword(login, password) {
  const basic = [login, password];
  const me = await api("api/v1/account", { basic });
  const now = new Date();
  const token = await api("api/v1/tokens", {
    method: "POST",
    basic,
    json: {
      description: `web UI sign-in ${stamp(now)}`,
      expiration_time: new Date(now.getTime() + SESSION_HOURS * 3600_000).toISOString(),
      permissions: heldPermissions(me),
      visibility_area: "account",
    },
  });
  const account = await api("api/v1/account", { secret: token.token });
  saveSession({ kind: "token", secret: token.token, token_id: token.token_id, account });
  return account;
}

/** keys mode: the key is checked (GET /api/v1/account) and kept. */
export async function signInWithKey(key) {
  const account = await api("api/v1/account", { secret: key });
  saveSession({ kind: "key", secret: key, account });
  return account;
}

/**
 * On page load: is the stored session still good? Returns null when it is (or when the
 * server cannot say right now), else the server's reason (the session is dropped).
 */
export async function checkSession() {
  const stored = session();
  if (!stored) return null;
  try {
    const account = await api("api/v1/account", { secret: stored.secret });
    saveSession({ ...stored, account });
    return null;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) return null;
    clearSession();
    return err.message;
  }
}

/** Revoke the session token (accounts mode) and forget the session. */
export async function signOut() {
  const stored = session();
  clearSession();
  if (stored?.kind === "token" && stored.token_id) {
    try {
      await api(`api/v1/tokens/${encodeURIComponent(stored.token_id)}`, { method: "DELETE", secret: stored.secret });
    } catch (err) {
      console.warn(`the session token was not revoked: ${err.message}`); // it expires anyway
    }
  }
}
