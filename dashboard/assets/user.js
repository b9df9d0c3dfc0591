// The user's page: status, settings, breakdown and history of their own
// budget, or the off state when an administrator has turned it off.
import {
  api, query, el, clear, setText, fmtUSD, fmtDate, daysUntil, LEVELS, levelBadge, budgetName, amountSign, progressBar,
  showMessage, showProblem, clearErrors, setupLogin, askLogin, isDirty, trackDirty, whoAmI, download,
} from "./common.js";
import { drawBreakdown, historyRows } from "./usage.js";
import { loadDaily, drawDaily, forecastSentence, levelBanner, showBanner } from "./insights.js";

const REFRESH_MS = 30000;
const PAGE = 20;

const $ = (id) => document.getElementById(id);
const form = $("settings-form");
let settings = null; // the last settings read
let etag = null;
let shownVersion = null; // the version the form shows
let timer = null;
let me = null; // GET /me: {user_id, admin}, once known
let status = null; // the last status read (GET /status)
const history = { cursors: [""], index: 0 };

// The settings a user may change, all of them only with "can modify"
// (admins change their own whatever their settings say): [input id,
// member, kind].
const FIELDS = [
  ["s-limit", "limit_usd", "text"],
  ["s-period", "budget_period", "select"],
  ["s-days", "custom_period_days", "int"],
  ["s-tz", "timezone", "text"],
  ["s-enforce", "enforce_budget", "bool"],
  ["s-yellow", "alert_threshold_yellow", "text"],
  ["s-orange", "alert_threshold_orange", "text"],
  ["s-red", "alert_threshold_red", "text"],
];

const isAdmin = () => !!(me && me.admin);

function handle(err) {
  if (err.status === 401) {
    stop();
    askLogin("Your token was not accepted. Sign in again.");
    return true;
  }
  if (err.status === 403 && err.problem && err.problem.hidden) {
    // Off: nothing of the budget shows until the next load.
    stop();
    $("app").hidden = true;
    $("login").hidden = true;
    $("hidden-page").hidden = false;
    settings = null;
    showMessage("");
    return true;
  }
  return false;
}

function stop() {
  if (timer) clearInterval(timer);
  timer = null;
}

// budgetsOf returns the budgets that apply to the user's calls (GET
// /status "budgets"), the binding one first; a status without the list
// has only the user's own budget, which is the status itself.
function budgetsOf(s) {
  const own = Object.assign({ scope: "user", id: s.user_id }, s);
  const list = Array.isArray(s.budgets) && s.budgets.length ? s.budgets : [own];
  // The API lists the binding one first; keep to that whatever it sends.
  return list.map((b, i) => [b, i]).sort((a, b) => (b[0].binding ? 1 : 0) - (a[0].binding ? 1 : 0) || a[1] - b[1]).map(([b]) => b);
}

// isOwn reports whether b is the user's own budget (not a cap of it).
const isOwn = (b) => (!b.scope || b.scope === "user") && !b.pattern;

// budgetCard shows one budget: its level, bar, figures and reset time.
function budgetCard(b, s, n, several) {
  const pct = Math.max(0, parseFloat(b.percent_used) || 0);
  const own = isOwn(b);
  const name = budgetName(b);
  const hid = "budget-" + n + "-h";
  const days = daysUntil(b.current_period_end);
  const resets = "Resets " + fmtDate(b.current_period_end, true) + " (in " + days + (days === 1 ? " day)." : " days).");
  const level = LEVELS[b.alert_level] ? b.alert_level : "green";
  const card = el("article", { class: "budget-card lvl-" + level + (b.binding && several ? " binding" : ""), "aria-labelledby": hid },
    several ? el("h3", { id: hid }, name,
      b.binding ? el("span", { class: "binding-badge" }, "Binding") : null) : null,
    several && b.binding ? el("p", { class: "hint" }, "The budget with the least room left: it decides whether your next call fits.") : null,
    el("p", { class: "level-line" }, levelBadge(b.alert_level), " ", el("span", { class: "pct" }, pct.toFixed(1) + "% used")),
    progressBar(b.percent_used, b.alert_level, several ? name : null),
    el("dl", { class: "figures" },
      el("div", {}, el("dt", {}, "Spent"), el("dd", {}, fmtUSD(b.spent_usd))),
      el("div", {}, el("dt", {}, "Limit"), el("dd", {}, fmtUSD(b.limit_usd))),
      el("div", {}, el("dt", {}, "Remaining"), el("dd", { class: "remaining" }, fmtUSD(b.remaining_usd))),
      amountSign(b.reserved_usd) > 0 ? el("div", {}, el("dt", {}, "In flight"), el("dd", {}, fmtUSD(b.reserved_usd))) : null),
    own
      ? el("p", { class: "period" },
        "Period: " + fmtDate(s.current_period_start) + " – " + fmtDate(s.current_period_end) +
        " (" + s.budget_period + ", " + s.timezone + "). Resets in " + days + (days === 1 ? " day." : " days."))
      : el("p", { class: "period" }, "Period: " + fmtDate(b.current_period_start) + " – " + fmtDate(b.current_period_end) +
        (b.budget_period ? " (" + b.budget_period + ")" : "") + ". " + resets),
    el("p", { class: "hint" }, b.enforce_budget === false
      ? "This limit is not enforced: calls are allowed past it."
      : own ? "Calls that would go over the limit are refused."
        : b.pattern ? "Calls to models matching " + b.pattern + " that would go over this cap are refused."
          : "Shared with the other members: calls that would go over it are refused."));
  return card;
}

async function loadStatus() {
  const { data: s } = await api("/status");
  const body = $("status-body");
  clear(body);
  const list = budgetsOf(s);
  const several = list.length > 1;
  setText("status-h", several ? "Budgets this period" : "Current period");
  // Nothing left in the binding budget: calls are refused, and this
  // says by which budget.
  const bind = list.find((b) => b.binding) || (several ? null : list[0]);
  if (bind && bind.enforce_budget !== false && amountSign(bind.remaining_usd) === 0) {
    body.appendChild(el("p", { class: "refusal", id: "refusal" },
      el("strong", {}, "Calls are being refused. "),
      (several ? budgetName(bind) + " has" : "Your budget has") + " nothing left until " + fmtDate(bind.current_period_end, true) +
      (several ? "; it is the budget that binds." : ".")));
  }
  if (several) {
    body.appendChild(el("p", { class: "hint" }, list.length + " budgets apply to your calls, and a call must fit in each. " +
      "The binding one, with the least room left, comes first."));
  }
  body.appendChild(el("ul", { class: "budget-cards" + (several ? " several" : ""), role: "list" },
    list.map((b, i) => el("li", {}, budgetCard(b, s, i, several)))));
  // The banner warns about the budget that binds, at orange and red.
  const top = bind || list[0];
  showBanner($("banner"), top ? levelBanner(top, budgetName(top), isOwn(top) ? s.forecast : null) : null);
  setText("forecast", forecastSentence(s));
  status = s;
}

async function loadDailyChart() {
  if (!status) return;
  const daily = await loadDaily(api, "/usage/daily", status);
  drawDaily($("daily-chart"), status, daily);
}

function fillSettings(s) {
  const editable = s.user_can_modify_limit || isAdmin();
  for (const [id, member, kind] of FIELDS) {
    const input = $(id);
    const v = s[member];
    if (kind === "bool") input.checked = !!v;
    else input.value = v === undefined || v === null ? "" : String(v);
    input.disabled = !editable;
    const box = input.closest(".field");
    let note = box.querySelector(".locked");
    if (!editable && !note) {
      note = el("p", { class: "hint locked", id: id + "-locked" }, "Only your administrator can change this.");
      box.appendChild(note);
      input.setAttribute("aria-describedby", id + "-locked");
    } else if (editable && note) {
      note.remove();
      input.removeAttribute("aria-describedby");
    }
  }
  $("s-days").closest(".field").hidden = $("s-period").value !== "custom";
  setText("settings-permission", editable
    ? "You can change your limit, period, timezone, enforcement and alert thresholds."
    : "View only: your administrator manages your limit, period, timezone, enforcement and alert thresholds.");
  $("settings-actions").hidden = !editable;
  const canReset = s.user_can_reset_budget || isAdmin();
  $("reset-area").hidden = !canReset;
  // A reset may start the new period with a new limit only for a user
  // who may also change the limit.
  $("reset-limit-box").hidden = !(canReset && editable);
  if (s.limit_usd !== undefined) setText("reset-limit-hint", "Leave empty to keep your current limit of " + fmtUSD(s.limit_usd) + ".");
  form.dataset.dirty = "false";
  shownVersion = s.version;
}

async function loadSettings(force) {
  const { data, etag: tag } = await api("/settings");
  settings = data;
  etag = tag;
  if (force || (!isDirty(form) && shownVersion !== data.version)) fillSettings(data);
}

function collect() {
  const body = {};
  for (const [id, member, kind] of FIELDS) {
    const input = $(id);
    if (input.disabled) continue;
    let v;
    if (kind === "bool") v = input.checked;
    else if (kind === "int") {
      if (input.closest(".field").hidden) continue;
      v = input.value.trim() === "" ? undefined : Number(input.value);
    } else v = input.value.trim();
    if (v === undefined) continue;
    const old = settings[member];
    if (String(v) !== String(old === undefined ? "" : old)) body[member] = v;
  }
  return body;
}

async function save(ev) {
  ev.preventDefault();
  clearErrors(form);
  const body = collect();
  if (!Object.keys(body).length) {
    setText("settings-error", "Nothing changed.");
    return;
  }
  try {
    const { data, etag: tag } = await api("/settings", { method: "PUT", body, etag });
    settings = data;
    etag = tag;
    fillSettings(data);
    showMessage("Settings saved.", "ok");
    await Promise.all([loadStatus()]);
  } catch (err) {
    if (handle(err)) return;
    if (err.status === 412) {
      setText("settings-error", "Your settings were changed elsewhere while you were editing. " +
        "Your edits are still in the form; review them against the latest values and save again.");
      const keep = collect();
      await loadSettings(true).catch(() => {});
      for (const [id, member, kind] of FIELDS) {
        if (!(member in keep)) continue;
        if (kind === "bool") $(id).checked = keep[member];
        else $(id).value = String(keep[member]);
      }
      form.dataset.dirty = "true";
      return;
    }
    showProblem(form, err, $("settings-error"));
  }
}

async function loadBreakdown() {
  const { data } = await api("/usage/breakdown");
  drawBreakdown($("by-provider"), $("by-model"), data);
}

async function loadHistory() {
  const cursor = history.cursors[history.index];
  const { data } = await api("/usage/history" + query({ limit: PAGE, cursor }));
  historyRows($("history-body"), data.usage || []);
  history.cursors.length = history.index + 1;
  if (data.next_cursor) history.cursors.push(data.next_cursor);
  $("history-next").disabled = !data.next_cursor;
  $("history-first").disabled = history.index === 0;
  setText("history-page", "Page " + (history.index + 1));
}

async function refresh(first) {
  try {
    await loadStatus();
    await loadSettings(first);
    await Promise.all([loadBreakdown(), loadHistory(), loadDailyChart()]);
    $("hidden-page").hidden = true;
    $("login").hidden = true;
    $("app").hidden = false;
    if (first) showMessage("");
    setText("updated", "Last updated " + new Date().toLocaleTimeString() + ".");
  } catch (err) {
    if (!handle(err)) showMessage("Could not load your budget: " + err.message, "error");
  }
}

function start() {
  stop();
  history.cursors = [""];
  history.index = 0;
  settings = null;
  refresh(true);
  timer = setInterval(() => refresh(false), REFRESH_MS);
  // Who is signed in decides the link to the admin page, and that an
  // admin may change their own settings whatever they say. Asked
  // alongside the budget, so that it never delays it.
  whoAmI().then((who) => {
    me = who;
    $("nav-admin").hidden = !isAdmin();
    if (isAdmin() && settings && !isDirty(form)) fillSettings(settings);
  });
}

trackDirty(form);
form.addEventListener("submit", save);
$("s-period").addEventListener("change", () => {
  $("s-days").closest(".field").hidden = $("s-period").value !== "custom";
});
$("settings-revert").addEventListener("click", () => {
  clearErrors(form);
  if (settings) fillSettings(settings);
});
$("history-next").addEventListener("click", () => {
  if (history.index + 1 < history.cursors.length) history.index++;
  loadHistory().catch((e) => handle(e) || showMessage(e.message, "error"));
});
$("history-csv").addEventListener("click", async () => {
  setText("history-csv-error", "");
  try {
    await download($("history-csv").dataset.csv, "usage.csv");
  } catch (err) {
    if (!handle(err)) setText("history-csv-error", "Could not download the history: " + err.message);
  }
});
$("history-first").addEventListener("click", () => {
  history.index = 0;
  loadHistory().catch((e) => handle(e) || showMessage(e.message, "error"));
});

const resetForm = $("reset-form");
$("reset-open").addEventListener("click", () => {
  clearErrors(resetForm);
  resetForm.hidden = false;
  $("reset-open").hidden = true;
  $("reset-reason").focus();
});
$("reset-cancel").addEventListener("click", () => {
  resetForm.hidden = true;
  $("reset-open").hidden = false;
  $("reset-open").focus();
});
resetForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(resetForm);
  const reason = $("reset-reason").value.trim();
  if (!reason) {
    showProblem(resetForm, { problem: { field: "reason", detail: "Give a reason for the reset." } });
    return;
  }
  const body = { reason };
  const limit = $("reset-limit").value.trim();
  if (limit && !$("reset-limit-box").hidden) body.limit_usd = limit;
  try {
    await api("/reset", { method: "POST", body });
    $("reset-reason").value = "";
    $("reset-limit").value = "";
    resetForm.hidden = true;
    $("reset-open").hidden = false;
    showMessage(body.limit_usd
      ? "Budget reset. A new period has started with a limit of " + fmtUSD(body.limit_usd) + "."
      : "Budget reset. A new period has started.", "ok");
    history.cursors = [""];
    history.index = 0;
    await refresh(false);
  } catch (err) {
    if (!handle(err)) showProblem(resetForm, err, $("reset-error"));
  }
});

setupLogin(start);
