// Shared helpers: the API client, the token, DOM building and formatting.
// Every piece of data reaches the page as text (textContent or text
// nodes); nothing here parses HTML.

const TOKEN_KEY = "llmbudget.dashboard.token";

const meta = document.querySelector('meta[name="budget-api"]');
export const apiBase = (meta ? meta.getAttribute("content") : "").replace(/\/+$/, "");

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch (e) {
    return "";
  }
}

export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) {
    // storage disabled: the token lives until the page is left
  }
}

// ApiError is a failed call: status and the problem document. A refusal
// (a problem naming the budget that refused, as a 429 does) says which
// budget it was.
export class ApiError extends Error {
  constructor(status, problem) {
    let text = (problem && (problem.detail || problem.title)) || "HTTP " + status;
    const by = problem ? refusedBy(problem) : "";
    if (by) text += " " + by;
    super(text);
    this.status = status;
    this.problem = problem || {};
  }
}

// refusedBy names the budget a refusal problem names ("scope",
// "budget_id", "pattern"), or returns "" for any other problem.
export function refusedBy(p) {
  if (!p || !p.scope || !p.budget_id) return "";
  return "Refused by " + budgetName({ scope: p.scope, id: p.budget_id, pattern: p.pattern }, true) + ".";
}

// budgetName names a budget of GET /status "budgets" (or of an admin
// list): "Your budget", "Team “research”", "Org “acme”", with "cap on
// gpt-4o*" for a model cap. lower starts it in lower case, for inside a
// sentence.
export function budgetName(b, lower) {
  let s;
  if (b.scope === "team" || b.scope === "org") {
    s = (b.scope === "team" ? "Team" : "Org") + " “" + b.id + "”";
    if (b.pattern) s += ": cap on " + b.pattern;
  } else {
    s = b.pattern ? "Your cap on " + b.pattern : "Your budget";
  }
  return lower ? s.charAt(0).toLowerCase() + s.slice(1) : s;
}

// amountSign returns the sign (-1, 0 or 1) of a decimal string of the
// API, without turning it into a float; NaN when it is not one.
export function amountSign(s) {
  const m = /^\s*([+-]?)(\d*)(?:\.(\d*))?\s*$/.exec(String(s ?? ""));
  if (!m || (m[2] === "" && (m[3] === undefined || m[3] === ""))) return NaN;
  if (!/[1-9]/.test(m[2] + (m[3] || ""))) return 0;
  return m[1] === "-" ? -1 : 1;
}

// api calls the budget API; it resolves to {data, etag}.
export async function api(path, opts = {}) {
  const headers = { Accept: "application/json" };
  const tok = getToken();
  if (tok) headers.Authorization = "Bearer " + tok;
  const init = { method: opts.method || "GET", headers, cache: "no-store", credentials: "same-origin" };
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.body);
  }
  if (opts.etag) headers["If-Match"] = opts.etag;
  let res;
  try {
    res = await fetch(apiBase + path, init);
  } catch (e) {
    throw new ApiError(0, { title: "Network error", detail: "The budget service could not be reached." });
  }
  let data = null;
  if ((res.headers.get("Content-Type") || "").includes("json")) {
    data = await res.json().catch(() => null);
  }
  if (!res.ok) throw new ApiError(res.status, data || { title: res.statusText });
  return { data, etag: res.headers.get("ETag") };
}

// segment encodes s as one URL path segment: a user ID or a template
// name. encodeURIComponent leaves "." alone, so it is encoded too ("x.y"
// becomes "x%2Ey"). No user ID or template name is "." or "..", the only
// segments browsers would drop or climb even encoded.
export function segment(s) {
  return encodeURIComponent(String(s)).replace(/\./g, "%2E");
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

// el builds an element. attrs are set with setAttribute (no event
// handler attributes: listeners go through addEventListener); children
// that are strings become text nodes.
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (/^on/i.test(k)) throw new Error("el: event handler attributes are not allowed");
    if (v === false || v === null || v === undefined) continue;
    e.setAttribute(k, v === true ? "" : String(v));
  }
  append(e, children);
  return e;
}

function append(parent, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

export function setText(id, text) {
  const n = typeof id === "string" ? document.getElementById(id) : id;
  if (n) n.textContent = text;
}

export function fmtUSD(s) {
  const n = Number(s);
  if (s === undefined || s === null || s === "" || !isFinite(n)) return String(s ?? "–");
  const small = n !== 0 && Math.abs(n) < 0.01;
  return "$" + n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: small ? 6 : 2 });
}

export function fmtNum(n) {
  return Number(n || 0).toLocaleString("en-US");
}

export function fmtDate(iso, withTime) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return withTime ? d.toLocaleString() : d.toLocaleDateString();
}

export function daysUntil(iso) {
  const ms = new Date(iso) - Date.now();
  return Math.max(0, Math.ceil(ms / 86400000));
}

// progressBar draws how much of a budget is used (percent_used, a
// decimal string: only the bar's width comes from it as a number).
export function progressBar(percent, level, label) {
  const pct = Math.max(0, parseFloat(percent) || 0);
  const info = LEVELS[level] || LEVELS.green;
  const bar = el("div", { class: "progress progress-" + (LEVELS[level] ? level : "green"), role: "progressbar",
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.min(100, pct)),
    "aria-valuetext": pct.toFixed(1) + "% used, " + info.word, "aria-label": label || null },
  el("div", { class: "progress-fill" }));
  bar.firstChild.style.width = Math.min(100, pct) + "%";
  return bar;
}

// The levels: a word and an icon with every colour, never colour alone.
export const LEVELS = {
  green: { word: "Healthy", icon: "✓" },
  yellow: { word: "Warning", icon: "!" },
  orange: { word: "High", icon: "▲" },
  red: { word: "Over limit", icon: "✕" },
};

export function levelBadge(level) {
  const l = LEVELS[level] ? level : "green";
  const info = LEVELS[l];
  return el("span", { class: "badge badge-" + l },
    el("span", { class: "badge-icon", "aria-hidden": "true" }, info.icon),
    " " + info.word);
}

// showMessage writes a status line at the top of the page.
export function showMessage(text, kind) {
  const m = document.getElementById("message");
  if (!m) return;
  m.className = "message" + (text ? " message-" + (kind || "info") : "");
  m.textContent = text || "";
}

// fieldErrors shows a problem next to the field it names (data-field),
// or in fallback; it returns whether a field took it.
export function showProblem(form, err, fallback) {
  clearErrors(form);
  const p = (err && err.problem) || {};
  const text = p.detail || p.title || (err && err.message) || "Something went wrong.";
  if (p.field && form) {
    const box = form.querySelector('[data-field="' + cssEscape(p.field) + '"]');
    if (box) {
      const e = box.querySelector(".error");
      if (e) e.textContent = text;
      const input = box.querySelector("input, select, textarea");
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
      return true;
    }
  }
  if (fallback) fallback.textContent = text;
  return false;
}

export function clearErrors(form) {
  if (!form) return;
  for (const e of form.querySelectorAll(".error")) e.textContent = "";
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
}

function cssEscape(s) {
  return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/[^a-zA-Z0-9_-]/g, "");
}

// setupLogin wires the login box and the sign-out button. start runs
// with a token; it is called again after each sign-in.
export function setupLogin(start) {
  const login = document.getElementById("login");
  const form = document.getElementById("login-form");
  const input = document.getElementById("login-token");
  const logout = document.getElementById("logout");
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (!t) {
      input.focus();
      return;
    }
    setToken(t);
    input.value = "";
    login.hidden = true;
    logout.hidden = false;
    start();
  });
  logout.addEventListener("click", () => {
    setToken("");
    location.reload();
  });
  if (getToken()) {
    logout.hidden = false;
    start();
  } else {
    askLogin();
  }
}

// askLogin shows the login box (after a 401, or with no token).
export function askLogin(text) {
  const app = document.getElementById("app");
  if (app) app.hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("logout").hidden = !getToken();
  showMessage(text || "", text ? "error" : "info");
  document.getElementById("login-token").focus();
}

// whoAmI asks the API who the token belongs to (GET /me); it resolves to
// {user_id, admin}, or null when the API cannot say.
export async function whoAmI() {
  try {
    const { data } = await api("/me");
    return data && typeof data === "object" ? data : null;
  } catch (e) {
    return null;
  }
}

// plural returns "1 user" or "3 users".
export function plural(n, one, many) {
  return fmtNum(n) + " " + (Number(n) === 1 ? one : many || one + "s");
}

// isEditing reports whether the user is busy in a form: refreshes must
// not overwrite what they type.
export function isDirty(form) {
  return form.dataset.dirty === "true" || form.contains(document.activeElement);
}

export function trackDirty(form) {
  form.addEventListener("input", () => {
    form.dataset.dirty = "true";
  });
  form.addEventListener("change", () => {
    form.dataset.dirty = "true";
  });
}

// download fetches path from the API as CSV (with the token, which never
// goes in a URL) and saves it as a file, named as the answer's
// Content-Disposition says, else fallback. It resolves to the file name.
export async function download(path, fallback) {
  const headers = { Accept: "text/csv" };
  const tok = getToken();
  if (tok) headers.Authorization = "Bearer " + tok;
  let res;
  try {
    res = await fetch(apiBase + path, { headers, cache: "no-store", credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, { title: "Network error", detail: "The budget service could not be reached." });
  }
  if (!res.ok) {
    const data = (res.headers.get("Content-Type") || "").includes("json") ? await res.json().catch(() => null) : null;
    throw new ApiError(res.status, data || { title: res.statusText });
  }
  const blob = await res.blob();
  const m = /filename="?([^";]+)"?/.exec(res.headers.get("Content-Disposition") || "");
  const name = m ? m[1] : fallback;
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return name;
}
