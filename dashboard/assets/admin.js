// The admin page: overview, users, configure and reset dialogs, the audit
// log and the defaults for new users.
import {
  api, query, el, clear, setText, fmtUSD, fmtDate, levelBadge,
  showMessage, showProblem, clearErrors, setupLogin, askLogin, isDirty, trackDirty,
} from "./common.js";

const REFRESH_MS = 30000;
const PAGE = 25;
const $ = (id) => document.getElementById(id);

// The settings an admin edits: [member, label, kind].
const SETTINGS = [
  ["limit_usd", "Limit (USD)", "text"],
  ["budget_period", "Period", "period"],
  ["custom_period_days", "Custom period (days)", "int"],
  ["timezone", "Timezone (IANA, e.g. Europe/Paris)", "text"],
  ["enforce_budget", "Enforce: block calls over the limit", "bool"],
  ["alert_threshold_yellow", "Yellow threshold (%)", "text"],
  ["alert_threshold_orange", "Orange threshold (%)", "text"],
  ["alert_threshold_red", "Red threshold (%)", "text"],
  ["budget_visible_to_user", "User can see the budget", "bool"],
  ["user_can_modify_limit", "User can change limit, period, timezone and enforcement", "bool"],
  ["user_can_reset_budget", "User can reset the budget", "bool"],
];

let timer = null;
const users = { cursors: [""], index: 0, q: "", level: "" };
const audit = { cursors: [""], index: 0, user: "" };

function handle(err) {
  if (err.status === 401) {
    stop();
    askLogin("Your token was not accepted. Sign in again.");
    return true;
  }
  if (err.status === 403) {
    stop();
    askLogin("This token is not an administrator's. Sign in with an admin token.");
    return true;
  }
  return false;
}

function stop() {
  if (timer) clearInterval(timer);
  timer = null;
}

function report(err) {
  if (!handle(err)) showMessage(err.message, "error");
}

// buildFields fills container with one labelled input per setting; ids
// take prefix.
function buildFields(container, prefix) {
  clear(container);
  const grid = el("div", { class: "grid" });
  for (const [member, label, kind] of SETTINGS) {
    const id = prefix + "-" + member;
    let input;
    if (kind === "period") {
      input = el("select", { id, name: member },
        el("option", { value: "daily" }, "Daily"), el("option", { value: "weekly" }, "Weekly"),
        el("option", { value: "monthly" }, "Monthly"), el("option", { value: "custom" }, "Custom"));
    } else if (kind === "bool") {
      input = el("input", { id, name: member, type: "checkbox" });
    } else if (kind === "int") {
      input = el("input", { id, name: member, type: "number", min: "1", step: "1", inputmode: "numeric" });
    } else {
      input = el("input", { id, name: member, autocomplete: "off", spellcheck: "false",
        inputmode: member === "timezone" ? "text" : "decimal" });
    }
    const lab = el("label", { for: id }, label);
    const box = kind === "bool"
      ? el("div", { class: "field check", "data-field": member }, input, lab, el("p", { class: "error" }))
      : el("div", { class: "field", "data-field": member }, lab, input, el("p", { class: "error" }));
    grid.appendChild(box);
  }
  container.appendChild(grid);
  const period = container.querySelector('[name="budget_period"]');
  const sync = () => {
    container.querySelector('[data-field="custom_period_days"]').hidden = period.value !== "custom";
  };
  period.addEventListener("change", sync);
  sync();
}

function fill(container, s) {
  for (const [member, , kind] of SETTINGS) {
    const input = container.querySelector('[name="' + member + '"]');
    const v = s[member];
    if (kind === "bool") input.checked = !!v;
    else input.value = v === undefined || v === null ? "" : String(v);
  }
  container.querySelector('[name="budget_period"]').dispatchEvent(new Event("change"));
}

// read returns the members whose value differs from base (all of them
// when base is null).
function read(container, base) {
  const out = {};
  for (const [member, , kind] of SETTINGS) {
    const input = container.querySelector('[name="' + member + '"]');
    let v;
    if (kind === "bool") v = input.checked;
    else if (kind === "int") {
      if (input.closest(".field").hidden || input.value.trim() === "") continue;
      v = Number(input.value);
    } else {
      v = input.value.trim();
      if (v === "" && !base) continue;
    }
    const old = base ? base[member] : undefined;
    if (!base || String(v) !== String(old === undefined ? "" : old)) out[member] = v;
  }
  return out;
}

// ---- overview and users ----

async function loadUsers() {
  const { data } = await api("/admin/list" + query({
    q: users.q, level: users.level, limit: PAGE, cursor: users.cursors[users.index],
  }));
  const s = data.summary || {};
  setText("sum-users", String(s.users ?? "–"));
  setText("sum-limit", fmtUSD(s.total_limit_usd));
  setText("sum-spent", fmtUSD(s.total_spent_usd));
  setText("sum-over", String(s.users_over_budget ?? "–"));
  const tb = $("users-body");
  clear(tb);
  const list = data.users || [];
  if (!list.length) tb.appendChild(el("tr", {}, el("td", { colspan: "6" }, "No users match.")));
  for (const u of list) {
    const conf = el("button", { type: "button", class: "secondary small" }, "Configure");
    conf.setAttribute("aria-label", "Configure " + u.user_id);
    conf.addEventListener("click", () => openConfigure(u.user_id));
    const reset = el("button", { type: "button", class: "danger small" }, "Reset");
    reset.setAttribute("aria-label", "Reset " + u.user_id);
    reset.addEventListener("click", () => openReset(u.user_id));
    const log = el("button", { type: "button", class: "secondary small" }, "Audit");
    log.setAttribute("aria-label", "Audit log of " + u.user_id);
    log.addEventListener("click", () => {
      $("a-user").value = u.user_id;
      audit.user = u.user_id;
      audit.cursors = [""];
      audit.index = 0;
      loadAudit().then(() => $("audit-h").scrollIntoView()).catch(report);
    });
    const flags = [];
    if (!u.budget_visible_to_user) flags.push("hidden");
    if (!u.enforce_budget) flags.push("not enforced");
    tb.appendChild(el("tr", {},
      el("th", { scope: "row" }, el("span", { class: "uid" }, u.user_id),
        u.admin_notes ? el("span", { class: "hint block" }, u.admin_notes) : null),
      el("td", {}, levelBadge(u.alert_level), " ", el("span", { class: "hint" }, Number(u.percent_used).toFixed(1) + "%"),
        flags.length ? el("span", { class: "hint block" }, flags.join(", ")) : null),
      el("td", { class: "num" }, fmtUSD(u.spent_usd)),
      el("td", { class: "num" }, fmtUSD(u.limit_usd)),
      el("td", {}, u.budget_period + (u.budget_period === "custom" ? " (" + u.custom_period_days + " d)" : ""),
        el("span", { class: "hint block" }, "until " + fmtDate(u.current_period_end))),
      el("td", { class: "row-actions" }, conf, reset, log)));
  }
  users.cursors.length = users.index + 1;
  if (data.next_cursor) users.cursors.push(data.next_cursor);
  $("users-next").disabled = !data.next_cursor;
  $("users-first").disabled = users.index === 0;
}

// ---- configure dialog ----

const dlg = $("configure");
const cform = $("configure-form");
const cfields = $("configure-fields");
let editing = null; // {userId, base, etag}

async function openConfigure(userId) {
  clearErrors(cform);
  $("configure-reload").hidden = true;
  buildFields(cfields, "c");
  editing = { userId: userId || "", base: null, etag: null };
  $("c-user").value = userId || "";
  $("c-user").readOnly = !!userId;
  $("c-notes").value = "";
  setText("configure-h", userId ? "Configure " + userId : "Configure a user");
  if (userId) {
    try {
      const { data, etag } = await api("/admin/users/" + encodeURIComponent(userId));
      editing.base = data;
      editing.etag = etag;
      fill(cfields, data);
      $("c-notes").value = data.admin_notes || "";
    } catch (err) {
      report(err);
      return;
    }
  } else if (defaults) {
    fill(cfields, defaults); // a new user starts from the defaults
  }
  dlg.showModal();
  (userId ? cfields.querySelector("input, select") : $("c-user")).focus();
}

function configureBody() {
  const body = read(cfields, editing.base);
  const notes = $("c-notes").value;
  if (!editing.base || notes !== (editing.base.admin_notes || "")) body.admin_notes = notes;
  body.user_id = editing.userId || $("c-user").value.trim();
  return body;
}

cform.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(cform);
  const body = configureBody();
  if (!body.user_id) {
    showProblem(cform, { problem: { field: "user_id", detail: "Enter a user ID." } });
    return;
  }
  try {
    await api("/admin/configure", { method: "PUT", body, etag: editing.etag || undefined });
    dlg.close();
    showMessage("Saved the budget of " + body.user_id + ".", "ok");
    await refresh();
  } catch (err) {
    if (err.status === 401) return handle(err);
    if (err.status === 412) {
      setText("configure-error", "Someone else changed this user's settings after you opened this dialog, " +
        "so nothing was saved. Your edits are still here: load the latest values (your edits are kept " +
        "on top of them), check them, then save again.");
      $("configure-reload").hidden = false;
      $("configure-reload").focus();
      return;
    }
    showProblem(cform, err, $("configure-error"));
  }
});

$("configure-reload").addEventListener("click", async () => {
  const mine = configureBody();
  try {
    const { data, etag } = await api("/admin/users/" + encodeURIComponent(editing.userId));
    const changed = SETTINGS.filter(([m]) => String(data[m]) !== String(editing.base[m])).map(([, l]) => l);
    if ((data.admin_notes || "") !== (editing.base.admin_notes || "")) changed.push("Admin notes");
    editing.base = data;
    editing.etag = etag;
    fill(cfields, data);
    $("c-notes").value = data.admin_notes || "";
    for (const [m, v] of Object.entries(mine)) {
      if (m === "user_id") continue;
      const input = m === "admin_notes" ? $("c-notes") : cfields.querySelector('[name="' + m + '"]');
      if (input.type === "checkbox") input.checked = v;
      else input.value = String(v);
    }
    cfields.querySelector('[name="budget_period"]').dispatchEvent(new Event("change"));
    $("configure-reload").hidden = true;
    setText("configure-error", changed.length
      ? "Loaded the latest version. Changed meanwhile: " + changed.join(", ") + ". Your edits are applied on top; save to confirm."
      : "Loaded the latest version; your edits are applied on top. Save to confirm.");
  } catch (err) {
    report(err);
  }
});

$("configure-cancel").addEventListener("click", () => dlg.close());

// ---- reset dialog ----

const rdlg = $("reset");
let resetting = "";

function openReset(userId) {
  resetting = userId;
  setText("reset-who", "Start a new period for " + userId + " with nothing spent. This is recorded in the audit log.");
  $("r-reason").value = "";
  setText("reset-error", "");
  rdlg.showModal();
  $("r-reason").focus();
}

$("reset-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const reason = $("r-reason").value.trim();
  if (!reason) {
    setText("reset-error", "Give a reason for the reset.");
    $("r-reason").focus();
    return;
  }
  try {
    await api("/admin/reset/" + encodeURIComponent(resetting), { method: "POST", body: { reason } });
    rdlg.close();
    showMessage("Reset the budget of " + resetting + ".", "ok");
    await refresh();
  } catch (err) {
    if (!handle(err)) setText("reset-error", err.message);
  }
});
$("reset-cancel").addEventListener("click", () => rdlg.close());

// ---- audit log ----

async function loadAudit() {
  const { data } = await api("/admin/audit" + query({
    user_id: audit.user, limit: PAGE, cursor: audit.cursors[audit.index],
  }));
  const tb = $("audit-body");
  clear(tb);
  const list = data.entries || [];
  if (!list.length) tb.appendChild(el("tr", {}, el("td", { colspan: "7" }, "No entries.")));
  for (const e of list) {
    const limit = e.previous_limit_usd === e.new_limit_usd
      ? fmtUSD(e.new_limit_usd) : fmtUSD(e.previous_limit_usd) + " → " + fmtUSD(e.new_limit_usd);
    tb.appendChild(el("tr", {},
      el("td", {}, fmtDate(e.at, true)),
      el("td", {}, e.user_id || "(defaults)"),
      el("td", {}, e.type),
      el("td", {}, e.actor + (e.actor_admin ? " (admin)" : "")),
      el("td", {}, e.reason || ""),
      el("td", { class: "num" }, limit),
      el("td", { class: "num" }, fmtUSD(e.previous_spent_usd))));
  }
  audit.cursors.length = audit.index + 1;
  if (data.next_cursor) audit.cursors.push(data.next_cursor);
  $("audit-next").disabled = !data.next_cursor;
  $("audit-first").disabled = audit.index === 0;
}

// ---- defaults ----

const dform = $("defaults-form");
let defaults = null;
let defaultsEtag = null;
let defaultsShown = null;

function buildDefaultsForm() {
  clear(dform);
  const fields = el("div", { id: "d-fields" });
  buildFields(fields, "d");
  dform.append(fields,
    el("p", { class: "error", id: "defaults-error", role: "alert" }),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Save defaults")));
}

async function loadDefaults(force) {
  const { data, etag } = await api("/admin/defaults");
  defaults = data;
  defaultsEtag = etag;
  if (force || (!isDirty(dform) && defaultsShown !== data.version)) {
    fill($("d-fields"), data);
    defaultsShown = data.version;
    dform.dataset.dirty = "false";
  }
}

dform.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(dform);
  const base = Object.assign({}, defaults);
  const body = read($("d-fields"), base);
  if (!Object.keys(body).length) {
    setText("defaults-error", "Nothing changed.");
    return;
  }
  try {
    await api("/admin/defaults", { method: "PUT", body, etag: defaultsEtag });
    showMessage("Saved the defaults for new users.", "ok");
    await loadDefaults(true);
  } catch (err) {
    if (err.status === 412) {
      setText("defaults-error", "The defaults were changed elsewhere while you edited them; nothing was saved. " +
        "Your edits are kept on top of the latest values: check them and save again.");
      await loadDefaults(true).catch(report);
      for (const [m, v] of Object.entries(body)) {
        const input = dform.querySelector('[name="' + m + '"]');
        if (input.type === "checkbox") input.checked = v;
        else input.value = String(v);
      }
      dform.dataset.dirty = "true";
      return;
    }
    if (!handle(err)) showProblem(dform, err, $("defaults-error"));
  }
});

// ---- wiring ----

async function refresh(first) {
  try {
    await loadUsers();
    await Promise.all([loadAudit(), loadDefaults(first)]);
    $("login").hidden = true;
    $("app").hidden = false;
    if (first) showMessage("");
  } catch (err) {
    report(err);
  }
}

function start() {
  stop();
  users.cursors = [""];
  users.index = 0;
  audit.cursors = [""];
  audit.index = 0;
  defaultsShown = null;
  refresh(true);
  timer = setInterval(() => {
    if (!dlg.open && !rdlg.open) refresh(false);
  }, REFRESH_MS);
}

$("filter-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  users.q = $("f-q").value.trim();
  users.level = $("f-level").value;
  users.cursors = [""];
  users.index = 0;
  loadUsers().catch(report);
});
$("f-level").addEventListener("change", () => $("filter-form").requestSubmit());
$("users-next").addEventListener("click", () => {
  if (users.index + 1 < users.cursors.length) users.index++;
  loadUsers().catch(report);
});
$("users-first").addEventListener("click", () => {
  users.index = 0;
  loadUsers().catch(report);
});
$("add-user").addEventListener("click", () => openConfigure(""));
$("audit-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  audit.user = $("a-user").value.trim();
  audit.cursors = [""];
  audit.index = 0;
  loadAudit().catch(report);
});
$("audit-next").addEventListener("click", () => {
  if (audit.index + 1 < audit.cursors.length) audit.index++;
  loadAudit().catch(report);
});
$("audit-first").addEventListener("click", () => {
  audit.index = 0;
  loadAudit().catch(report);
});

buildDefaultsForm();
trackDirty(dform);
setupLogin(start);
