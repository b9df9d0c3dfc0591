// The admin page: the switch that turns budgets on or off for every
// regular user, the overview, the users (with bulk changes), one user's
// usage, templates, the audit log and the defaults for new users.
import {
  api, query, segment, el, clear, setText, fmtUSD, fmtDate, fmtNum, plural, levelBadge, LEVELS,
  showMessage, showProblem, clearErrors, setupLogin, askLogin, isDirty, trackDirty, getToken, download,
} from "./common.js";
import { loadDaily, drawDaily, forecastSentence } from "./insights.js";
import { SETTINGS, buildFields, fill, read, restore, periodWords, permissionWords } from "./fields.js";
import { drawBreakdown, historyRows } from "./usage.js";
import { initGroups, loadGroups, groupDialog } from "./groups.js";

const REFRESH_MS = 30000;
const PAGE = 25;
const USAGE_PAGE = 20;
const $ = (id) => document.getElementById(id);

let timer = null;
let access = null; // GET /admin/access
let accessWanted = null; // what the open confirmation turns the switch to
let templates = []; // GET /admin/templates
const users = { cursors: [""], index: 0, q: "", level: "", projected: false, rows: [] };
// The selection for bulk changes: user IDs picked one by one (across
// pages and searches), or every user matching a search and level.
const selection = { ids: new Set(), match: null };
const audit = { cursors: [""], index: 0, user: "", type: "" };

function handle(err) {
  if (err.status === 401) {
    stop();
    askLogin("Your token was not accepted. Sign in again.");
    return true;
  }
  if (err.status === 403) {
    stop();
    askLogin("This token is not an administrator's. Sign in with an admin token, or open your own budget with “Your budget”.");
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

// problemText is what a problem document (or an error) says.
function problemText(p) {
  return (p && (p.detail || p.title)) || "failed";
}

// ---- budgets for regular users: the switch ----

async function loadAccess() {
  const { data } = await api("/admin/access");
  access = data;
  renderAccess();
}

function renderAccess() {
  const a = access;
  const sw = $("access-switch");
  sw.setAttribute("aria-checked", a.enabled ? "true" : "false");
  setText("access-state", a.enabled ? "On" : "Off");
  $("access").classList.toggle("access-off", !a.enabled);
  let count;
  if (!a.users) {
    count = "No regular users have a budget yet. New users start with it " + (a.enabled ? "shown." : "hidden.");
  } else {
    count = fmtNum(a.visible_users) + " of " + plural(a.users, "regular user") + " " +
      (a.visible_users === 1 ? "sees" : "see") + " their budget.";
    if (a.enabled && a.visible_users < a.users) {
      count += " " + fmtNum(a.users - a.visible_users) + " hidden one by one in Configure.";
    } else if (!a.enabled && a.visible_users > 0) {
      count += " " + fmtNum(a.visible_users) + " shown one by one in Configure.";
    }
  }
  setText("access-count", count);
}

// The switch asks before it changes anyone: it acts on every regular
// user, and turning it on again also shows the users hidden one by one.
$("access-switch").addEventListener("click", () => {
  if (!access) return;
  const box = $("access-confirm");
  if (!box.hidden) {
    accessWanted = null;
    box.hidden = true;
    return;
  }
  const on = !access.enabled;
  accessWanted = on;
  const hidden = access.users - access.visible_users;
  setText("access-confirm-text", on
    ? "Turn budgets on for every regular user? " + plural(hidden, "regular user") + " who " +
      (hidden === 1 ? "does" : "do") + " not see their budget now will see it, including any you hid one by one in Configure, " +
      "and new users will start with it shown."
    : "Turn budgets off for every regular user? " + plural(access.visible_users, "regular user") + " who " +
      (access.visible_users === 1 ? "sees" : "see") + " their budget now will no longer see it, and new users will start without it. " +
      "Limits stay enforced as you set them; admins keep theirs.");
  setText("access-apply", on ? "Turn on for every regular user" : "Turn off for every regular user");
  clear($("access-result"));
  box.hidden = false;
  $("access-apply").focus();
});

$("access-cancel").addEventListener("click", () => {
  accessWanted = null;
  $("access-confirm").hidden = true;
  $("access-switch").focus();
});

$("access-apply").addEventListener("click", async () => {
  // What the confirmation said, even if a refresh has changed the switch
  // since it opened.
  const enabled = accessWanted;
  if (enabled === null) return;
  const btn = $("access-apply");
  btn.disabled = true;
  try {
    const { data } = await api("/admin/access", { method: "PUT", body: { enabled } });
    access = data;
    accessWanted = null;
    renderAccess();
    $("access-confirm").hidden = true;
    const out = $("access-result");
    clear(out);
    out.appendChild(el("p", { class: "result-ok" },
      "Budgets for regular users are now " + (data.enabled ? "on" : "off") + ": " +
      plural(data.changed || 0, "user") + " changed."));
    const failed = data.failed || [];
    if (failed.length) {
      out.appendChild(el("p", { class: "error" }, "Not changed (" + failed.length + "):"));
      out.appendChild(el("ul", { class: "failures" }, failed.map((f) =>
        el("li", {}, el("span", { class: "uid" }, f.user_id), ": " + problemText(f.problem)))));
    }
    $("access-switch").focus();
    await refresh(false);
  } catch (err) {
    if (!handle(err)) {
      clear($("access-result"));
      $("access-result").appendChild(el("p", { class: "error" }, err.message));
    }
  } finally {
    btn.disabled = false;
  }
});

// ---- overview and users ----

async function loadUsers() {
  const { data } = await api("/admin/list" + query({
    q: users.q, level: users.level, projected: users.projected ? "over" : "",
    limit: PAGE, cursor: users.cursors[users.index],
  }));
  const s = data.summary || {};
  setText("sum-users", String(s.users ?? "–"));
  setText("sum-limit", fmtUSD(s.total_limit_usd));
  setText("sum-spent", fmtUSD(s.total_spent_usd));
  setText("sum-over", String(s.users_over_budget ?? "–"));
  const tb = $("users-body");
  clear(tb);
  const list = data.users || [];
  users.rows = list.map((u) => u.user_id);
  if (!list.length) tb.appendChild(el("tr", {}, el("td", { colspan: "7" }, "No users match.")));
  for (const u of list) {
    const id = u.user_id;
    const pick = el("input", { type: "checkbox", class: "pick", "aria-label": "Select " + id });
    pick.dataset.user = id;
    pick.addEventListener("change", () => {
      if (pick.checked) selection.ids.add(id);
      else selection.ids.delete(id);
      renderSelection();
    });
    const button = (text, label, cls, fn) => {
      const b = el("button", { type: "button", class: cls + " small", "aria-label": label + " " + id }, text);
      b.addEventListener("click", fn);
      return b;
    };
    const conf = button("Configure", "Configure", "secondary", () => openConfigure(id));
    const reset = button("Reset", "Reset", "danger", () => openReset(u));
    const usage = button("Usage", "Usage of", "secondary", () => openUsage(id));
    const log = button("Audit", "Audit log of", "secondary", () => {
      $("a-user").value = id;
      audit.user = id;
      audit.cursors = [""];
      audit.index = 0;
      loadAudit().then(() => $("audit-h").scrollIntoView()).catch(report);
    });
    const flags = [];
    if (!u.budget_visible_to_user) flags.push("hidden from the user");
    if (!u.enforce_budget) flags.push("not enforced");
    tb.appendChild(el("tr", {},
      el("td", { class: "select" }, pick),
      el("th", { scope: "row", class: "user-cell" }, el("span", { class: "uid" }, id),
        memberOf(u),
        u.admin_notes ? el("span", { class: "hint block" }, u.admin_notes) : null),
      el("td", { "data-label": "Status" }, levelBadge(u.alert_level), " ", el("span", { class: "hint" }, Number(u.percent_used).toFixed(1) + "%"),
        flags.length ? el("span", { class: "hint block" }, flags.join(", ")) : null),
      el("td", { class: "num", "data-label": "Spent" }, fmtUSD(u.spent_usd)),
      el("td", { class: "num", "data-label": "Limit" }, fmtUSD(u.limit_usd)),
      el("td", { "data-label": "Period" }, u.budget_period + (u.budget_period === "custom" ? " (" + u.custom_period_days + " d)" : ""),
        el("span", { class: "hint block" }, "until " + fmtDate(u.current_period_end))),
      el("td", { class: "row-actions" }, conf, reset, usage, log)));
  }
  users.cursors.length = users.index + 1;
  if (data.next_cursor) users.cursors.push(data.next_cursor);
  $("users-next").disabled = !data.next_cursor;
  $("users-first").disabled = users.index === 0;
  renderSelection();
}

// memberOf says which teams and org a user belongs to, or nothing.
function memberOf(u) {
  const teams = u.teams || [];
  if (!teams.length && !u.org) return null;
  const parts = [];
  if (teams.length) parts.push((teams.length === 1 ? "Team: " : "Teams: ") + teams.join(", "));
  if (u.org) parts.push("Org: " + u.org);
  return el("span", { class: "hint block member-of" }, parts.join(" · "));
}

// ---- selection and bulk changes ----

function selectedCount() {
  return selection.match ? null : selection.ids.size;
}

function matchWords(m) {
  const parts = [];
  if (m.q) parts.push("the search “" + m.q + "”");
  if (m.level) parts.push("the level " + ((LEVELS[m.level] || {}).word || m.level));
  return parts.length ? "Every user matching " + parts.join(" and ") : "Every user";
}

function renderSelection() {
  const m = selection.match;
  const n = selectedCount();
  for (const box of $("users-body").querySelectorAll("input.pick")) {
    box.checked = !!m || selection.ids.has(box.dataset.user);
    box.disabled = !!m;
  }
  const page = $("select-page");
  const onPage = users.rows.filter((id) => selection.ids.has(id)).length;
  page.disabled = !!m || !users.rows.length;
  page.checked = !!m || (users.rows.length > 0 && onPage === users.rows.length);
  page.indeterminate = !m && onPage > 0 && onPage < users.rows.length;
  $("select-matching").disabled = !!m;

  let status = "";
  if (m) status = matchWords(m) + " is selected, on every page. Choose the change below the list.";
  else if (n) status = plural(n, "user") + " selected. Choose the change below the list.";
  setText("select-status", status);

  const form = $("bulk");
  form.hidden = !m && !n;
  if (form.hidden) return;
  if (m) {
    setText("bulk-who", matchWords(m) + " (all pages).");
    setText("bulk-apply", "Apply to every matching user");
  } else {
    const ids = [...selection.ids];
    const shown = ids.slice(0, 10).join(", ");
    setText("bulk-who", "Selected: " + shown + (ids.length > 10 ? " and " + (ids.length - 10) + " more." : "."));
    setText("bulk-apply", "Apply to " + plural(n, "user"));
  }
}

function clearSelection() {
  selection.ids.clear();
  selection.match = null;
  renderSelection();
}

$("select-page").addEventListener("change", () => {
  const on = $("select-page").checked;
  for (const id of users.rows) {
    if (on) selection.ids.add(id);
    else selection.ids.delete(id);
  }
  renderSelection();
});

$("select-matching").addEventListener("click", () => {
  selection.ids.clear();
  if (users.projected) {
    // A bulk change matches by search and level only: with the forecast
    // filter on, pick the users shown rather than more than are listed.
    for (const id of users.rows) selection.ids.add(id);
  } else {
    selection.match = { q: users.q, level: users.level };
  }
  renderSelection();
});

$("bulk-clear").addEventListener("click", () => {
  clearSelection();
  clear($("bulk-result"));
  $("select-page").focus();
});

// A template sets every field, so the fields are off while one is chosen.
const bulkFields = ["b-limit", "b-period", "b-days", "b-enforce", "b-visible", "b-modify", "b-reset"];
$("b-template").addEventListener("change", () => {
  const t = $("b-template").value !== "";
  for (const id of bulkFields) $(id).disabled = t;
});
$("b-period").addEventListener("change", () => {
  $("b-days").closest(".field").hidden = $("b-period").value !== "custom";
});

function bulkChanges() {
  const c = {};
  const limit = $("b-limit").value.trim();
  if (limit) c.limit_usd = limit;
  if ($("b-period").value) {
    c.budget_period = $("b-period").value;
    if (c.budget_period === "custom" && $("b-days").value.trim()) c.custom_period_days = Number($("b-days").value);
  }
  for (const [id, member] of [["b-enforce", "enforce_budget"], ["b-visible", "budget_visible_to_user"],
    ["b-modify", "user_can_modify_limit"], ["b-reset", "user_can_reset_budget"]]) {
    if ($(id).value) c[member] = $(id).value === "true";
  }
  return c;
}

function resetBulkForm() {
  for (const id of bulkFields) {
    $(id).value = "";
    $(id).disabled = false;
  }
  $("b-template").value = "";
  $("b-days").closest(".field").hidden = true;
}

$("bulk").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = $("bulk");
  clearErrors(form);
  const out = $("bulk-result");
  clear(out);
  const body = selection.match
    ? { match: Object.fromEntries(Object.entries(selection.match).filter(([, v]) => v)) }
    : { user_ids: [...selection.ids] };
  const template = $("b-template").value;
  if (template) body.template = template;
  else {
    body.changes = bulkChanges();
    if (!Object.keys(body.changes).length) {
      setText("bulk-error", "Choose at least one change, or a template.");
      $("b-limit").focus();
      return;
    }
  }
  $("bulk-apply").disabled = true;
  try {
    const { data } = await api("/admin/bulk", { method: "POST", body });
    showBulkResult(out, data, template);
    resetBulkForm();
    await refresh(false);
  } catch (err) {
    if (!handle(err)) {
      // A problem in "changes" names the setting; show it by its field.
      const p = Object.assign({}, err.problem);
      if (p.field) p.field = p.field.replace(/^changes\./, "");
      showProblem(form, { problem: p, message: err.message }, $("bulk-error"));
    }
  } finally {
    $("bulk-apply").disabled = false;
  }
});

// showBulkResult lists what a bulk change did: how many changed, and
// each user it failed for.
function showBulkResult(out, data, template) {
  const results = data.results || [];
  const failed = results.filter((r) => !r.ok);
  const same = results.filter((r) => r.ok && !r.changed).length;
  let text = (template ? "Applied the template “" + template + "”: " : "") +
    "changed " + fmtNum(data.changed || 0) + " of " + plural(results.length, "user") + ".";
  if (same) text += " " + plural(same, "user") + " already had " + (template ? "its plan." : "these settings.");
  out.appendChild(el("p", { class: failed.length ? "" : "result-ok" }, text));
  if (failed.length) {
    out.appendChild(el("p", { class: "error" }, "Failed for " + plural(failed.length, "user") + " (left unchanged):"));
    out.appendChild(el("ul", { class: "failures" }, failed.map((r) =>
      el("li", {}, el("span", { class: "uid" }, r.user_id), ": " + problemText(r.problem)))));
  }
  if (data.bulk_id) out.appendChild(el("p", { class: "hint" }, "Recorded in the audit log as bulk change " + data.bulk_id + "."));
}

// ---- templates ----

async function loadTemplates() {
  const { data } = await api("/admin/templates");
  templates = data.templates || [];
  const tb = $("templates-body");
  clear(tb);
  if (!templates.length) tb.appendChild(el("tr", {}, el("td", { colspan: "6" }, "No templates yet.")));
  for (const t of templates) {
    const edit = el("button", { type: "button", class: "secondary small", "aria-label": "Edit template " + t.name }, "Edit");
    edit.addEventListener("click", () => openTemplate(t.name));
    const del = el("button", { type: "button", class: "danger small", "aria-label": "Delete template " + t.name }, "Delete");
    del.addEventListener("click", () => confirmDelete(t));
    tb.appendChild(el("tr", {},
      el("th", { scope: "row" }, el("span", { class: "uid" }, t.name)),
      el("td", { class: "num", "data-label": "Limit" }, fmtUSD(t.limit_usd)),
      el("td", { "data-label": "Period" }, periodWords(t)),
      el("td", { "data-label": "Enforced" }, t.enforce_budget ? "Yes" : "No"),
      el("td", { "data-label": "User" }, permissionWords(t)),
      el("td", { class: "row-actions" }, edit, del)));
  }
  for (const sel of [$("b-template"), $("c-template")]) {
    const keep = sel.value;
    while (sel.options.length > 1) sel.remove(1);
    for (const t of templates) {
      sel.appendChild(el("option", { value: t.name },
        t.name + " — " + fmtUSD(t.limit_usd) + " " + periodWords(t) + ", " + permissionWords(t)));
    }
    sel.value = templates.some((t) => t.name === keep) ? keep : "";
  }
  $("c-template-apply").disabled = !templates.length;
}

const tdlg = $("template");
const tform = $("template-form");
const tfields = $("template-fields");
let templateEditing = null; // {name, base, etag} or null for a new one

async function openTemplate(name) {
  clearErrors(tform);
  buildFields(tfields, "t");
  $("t-name").value = name || "";
  $("t-name").readOnly = !!name;
  templateEditing = { name: name || "", base: null, etag: null };
  setText("template-h", name ? "Edit template " + name : "New template");
  if (name) {
    try {
      const { data, etag } = await api("/admin/templates/" + segment(name));
      templateEditing.base = data;
      templateEditing.etag = etag;
      fill(tfields, data);
    } catch (err) {
      report(err);
      return;
    }
  } else if (defaults) {
    fill(tfields, defaults); // a new template starts from the defaults
  }
  tdlg.showModal();
  (name ? tfields.querySelector("input, select") : $("t-name")).focus();
}

tform.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(tform);
  const name = templateEditing.name || $("t-name").value.trim();
  if (!name) {
    showProblem(tform, { problem: { field: "name", detail: "Name the template." } });
    return;
  }
  if (!templateEditing.name && templates.some((t) => t.name === name)) {
    showProblem(tform, { problem: { field: "name", detail: "A template named “" + name + "” exists: edit it from the list instead." } });
    return;
  }
  const body = read(tfields, templateEditing.base);
  if (templateEditing.base && !Object.keys(body).length) {
    setText("template-error", "Nothing changed.");
    return;
  }
  try {
    await api("/admin/templates/" + segment(name), { method: "PUT", body, etag: templateEditing.etag || undefined });
    tdlg.close();
    showMessage("Saved the template “" + name + "”.", "ok");
    await Promise.all([loadTemplates(), loadAudit()]);
  } catch (err) {
    if (err.status === 401) return handle(err);
    if (err.status === 412) {
      setText("template-error", "This template was changed elsewhere after you opened it; nothing was saved. " +
        "Your edits are kept on top of the latest values: check them and save again.");
      try {
        const { data, etag } = await api("/admin/templates/" + segment(name));
        templateEditing.base = data;
        templateEditing.etag = etag;
        fill(tfields, data);
        restore(tfields, body);
      } catch (e) {
        report(e);
      }
      return;
    }
    showProblem(tform, err, $("template-error"));
  }
});
$("template-cancel").addEventListener("click", () => tdlg.close());
$("template-new").addEventListener("click", () => openTemplate(""));

const xdlg = $("confirm");
let deleting = null;

function confirmDelete(t) {
  deleting = t;
  setText("confirm-h", "Delete template " + t.name);
  setText("confirm-text", "Delete the template “" + t.name + "”? Users it was applied to keep their settings.");
  setText("confirm-error", "");
  xdlg.showModal();
  $("confirm-cancel").focus();
}

$("confirm-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("/admin/templates/" + segment(deleting.name), { method: "DELETE", etag: '"' + deleting.version + '"' });
    xdlg.close();
    showMessage("Deleted the template “" + deleting.name + "”.", "ok");
    await Promise.all([loadTemplates(), loadAudit()]);
  } catch (err) {
    if (handle(err)) return;
    if (err.status === 412) {
      setText("confirm-error", "The template was changed after the list was loaded; nothing was deleted. Check it, then delete it again.");
      await loadTemplates().catch(report);
      return;
    }
    setText("confirm-error", err.message);
  }
});
$("confirm-cancel").addEventListener("click", () => xdlg.close());

// ---- configure dialog ----

const dlg = $("configure");
const cform = $("configure-form");
const cfields = $("configure-fields");
let editing = null; // {userId, base, etag}

// The Configure dialog's visibility checkbox is this user's override of
// the switch at the top: its label says so, and what the switch is.
function configureLabels() {
  const state = access ? (access.enabled ? "on" : "off") : "";
  return {
    labels: { budget_visible_to_user: "Show this user their budget (overrides “Budgets for regular users” for this user)" },
    hints: {
      budget_visible_to_user: state === "on"
        ? "“Budgets for regular users” is on: unchecked hides the budget from this user only. Limits stay enforced either way."
        : state === "off"
          ? "“Budgets for regular users” is off: checked shows the budget to this user only. Limits stay enforced either way."
          : "Limits stay enforced either way.",
    },
  };
}

async function openConfigure(userId) {
  clearErrors(cform);
  $("configure-reload").hidden = true;
  const { labels, hints } = configureLabels();
  buildFields(cfields, "c", labels, hints);
  editing = { userId: userId || "", base: null, etag: null };
  $("c-user").value = userId || "";
  $("c-user").readOnly = !!userId;
  $("c-notes").value = "";
  $("c-template").value = "";
  setText("c-template-apply", userId ? "Apply template" : "Fill in from template");
  setText("c-template-hint", userId
    ? "Applies the template to this user now, replacing the values below; recorded in the audit log."
    : "Fills in the fields below from the template; Save creates the user.");
  setText("configure-h", userId ? "Configure " + userId : "Configure a user");
  if (userId) {
    try {
      const { data, etag } = await api("/admin/users/" + segment(userId));
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
    const { data, etag } = await api("/admin/users/" + segment(editing.userId));
    const changed = SETTINGS.filter(([m]) => String(data[m]) !== String(editing.base[m])).map(([, l]) => l);
    if ((data.admin_notes || "") !== (editing.base.admin_notes || "")) changed.push("Admin notes");
    editing.base = data;
    editing.etag = etag;
    fill(cfields, data);
    $("c-notes").value = data.admin_notes || "";
    delete mine.user_id;
    if ("admin_notes" in mine) $("c-notes").value = mine.admin_notes;
    delete mine.admin_notes;
    restore(cfields, mine);
    $("configure-reload").hidden = true;
    setText("configure-error", changed.length
      ? "Loaded the latest version. Changed meanwhile: " + changed.join(", ") + ". Your edits are applied on top; save to confirm."
      : "Loaded the latest version; your edits are applied on top. Save to confirm.");
  } catch (err) {
    report(err);
  }
});

// Apply a template to the user in the dialog (a bulk change of one), or,
// for a user not created yet, fill in the fields from it.
$("c-template-apply").addEventListener("click", async () => {
  clearErrors(cform);
  const name = $("c-template").value;
  if (!name) {
    showProblem(cform, { problem: { field: "template", detail: "Choose a template first." } });
    return;
  }
  const t = templates.find((x) => x.name === name);
  if (!editing.userId) {
    if (t) fill(cfields, t);
    setText("c-template-hint", "Filled in from “" + name + "”. Save creates the user with these values.");
    return;
  }
  try {
    const { data } = await api("/admin/bulk", { method: "POST", body: { user_ids: [editing.userId], template: name } });
    const r = (data.results || [])[0] || {};
    if (!r.ok) {
      showProblem(cform, { problem: { field: "template", detail: "Not applied: " + problemText(r.problem) } });
      return;
    }
    const fresh = await api("/admin/users/" + segment(editing.userId));
    editing.base = fresh.data;
    editing.etag = fresh.etag;
    fill(cfields, fresh.data);
    setText("c-template-hint", r.changed
      ? "Applied “" + name + "” to " + editing.userId + ". The values below are the user's now."
      : editing.userId + " already had the plan of “" + name + "”; nothing changed.");
    refresh(false);
  } catch (err) {
    if (!handle(err)) showProblem(cform, { problem: { field: "template", detail: err.message } });
  }
});

$("configure-cancel").addEventListener("click", () => dlg.close());

// ---- reset dialog ----

const rdlg = $("reset");
const rform = $("reset-form");
let resetting = "";

function openReset(u) {
  resetting = u.user_id;
  clearErrors(rform);
  setText("reset-who", "Start a new period for " + u.user_id + " with nothing spent. This is recorded in the audit log.");
  setText("r-limit-hint", "Leave empty to keep the current limit of " + fmtUSD(u.limit_usd) + ".");
  $("r-reason").value = "";
  $("r-limit").value = "";
  rdlg.showModal();
  $("r-reason").focus();
}

rform.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(rform);
  const reason = $("r-reason").value.trim();
  if (!reason) {
    showProblem(rform, { problem: { field: "reason", detail: "Give a reason for the reset." } });
    return;
  }
  const body = { reason };
  const limit = $("r-limit").value.trim();
  if (limit) body.limit_usd = limit;
  try {
    await api("/admin/reset/" + segment(resetting), { method: "POST", body });
    rdlg.close();
    showMessage("Reset the budget of " + resetting + (limit ? ", with a limit of " + fmtUSD(limit) : "") + ".", "ok");
    await refresh();
  } catch (err) {
    if (!handle(err)) showProblem(rform, err, $("reset-error"));
  }
});
$("reset-cancel").addEventListener("click", () => rdlg.close());

// ---- one user's usage ----

const udlg = $("usage");
const usage = { user: "", cursors: [""], index: 0 };

async function openUsage(userId) {
  usage.user = userId;
  usage.cursors = [""];
  usage.index = 0;
  setText("usage-h", "Usage of " + userId);
  setText("usage-summary", "Loading…");
  setText("usage-error", "");
  setText("u-forecast", "");
  $("usage-csv").dataset.csv = "/admin/users/" + segment(userId) + "/usage/history?format=csv";
  for (const n of [...$("u-daily").childNodes]) if (n.nodeName.toLowerCase() !== "figcaption") n.remove();
  clear($("usage-body"));
  udlg.showModal();
  $("usage-close").focus();
  try {
    const { data } = await api("/admin/users/" + segment(userId) + "/usage/breakdown");
    const t = data.total || {};
    setText("usage-summary", "This period (" + fmtDate(data.from) + " – " + fmtDate(data.to) + "): " +
      fmtUSD(t.cost_usd) + " over " + plural(t.requests || 0, "call") + ".");
    drawBreakdown($("u-by-provider"), $("u-by-model"), data);
    // The user's status (with the forecast) and spend per day.
    const { data: u } = await api("/admin/users/" + segment(userId));
    setText("u-forecast", forecastSentence(u, userId));
    drawDaily($("u-daily"), u, await loadDaily(api, "/admin/users/" + segment(userId) + "/usage/daily", u));
    await loadUsageHistory();
  } catch (err) {
    if (!handle(err)) {
      setText("usage-summary", "");
      setText("usage-error", err.status === 404 ? userId + " has no budget yet, so no usage to show." : err.message);
    }
  }
}

async function loadUsageHistory() {
  const { data } = await api("/admin/users/" + segment(usage.user) + "/usage/history" +
    query({ limit: USAGE_PAGE, cursor: usage.cursors[usage.index] }));
  historyRows($("usage-body"), data.usage || []);
  usage.cursors.length = usage.index + 1;
  if (data.next_cursor) usage.cursors.push(data.next_cursor);
  $("usage-next").disabled = !data.next_cursor;
  $("usage-first").disabled = usage.index === 0;
}

$("usage-next").addEventListener("click", () => {
  if (usage.index + 1 < usage.cursors.length) usage.index++;
  loadUsageHistory().catch((e) => handle(e) || setText("usage-error", e.message));
});
$("usage-first").addEventListener("click", () => {
  usage.index = 0;
  loadUsageHistory().catch((e) => handle(e) || setText("usage-error", e.message));
});
$("usage-close").addEventListener("click", () => udlg.close());
$("usage-csv").addEventListener("click", () => {
  setText("usage-error", "");
  download($("usage-csv").dataset.csv, "usage.csv").catch((e) => handle(e) || setText("usage-error", "Could not download: " + e.message));
});
// The audit log as CSV, with the filters shown.
$("audit-csv").addEventListener("click", () => {
  setText("audit-csv-error", "");
  $("audit-csv").dataset.csv = auditCSV();
  download($("audit-csv").dataset.csv, "audit.csv").catch((e) => handle(e) || setText("audit-csv-error", "Could not download the audit log: " + e.message));
});

// auditCSV is the CSV URL of the audit log with its current filters.
function auditCSV() {
  return "/admin/audit" + query({ format: "csv", user_id: audit.user, type: audit.type });
}

// ---- audit log ----

const TYPE_WORDS = {
  settings: "Settings",
  manual: "Manual reset",
  automatic: "Automatic reset",
  defaults: "Defaults",
  template: "Template",
};

// whatChanged lists an entry's changes, one "field: before → after" a
// line, then the template and bulk change it belongs to.
function whatChanged(e) {
  const changes = e.changes || [];
  let lines;
  if (changes.length > 1 && changes.every((c) => c.before === "")) {
    // Created (a template): every field is new, so list the values once.
    lines = [el("span", { class: "change block" }, changes.map((c) => c.field + ": " + c.after).join("; "))];
  } else if (changes.length > 1 && changes.every((c) => c.after === "")) {
    // Deleted: what it was.
    lines = [el("span", { class: "change block" }, "was " + changes.map((c) => c.field + ": " + c.before).join("; "))];
  } else {
    lines = changes.map((c) =>
      el("span", { class: "change block" }, c.field + ": " + (c.before === "" ? "(none)" : c.before) + " → " + (c.after === "" ? "(none)" : c.after)));
  }
  if (e.template) {
    let what = "applied";
    if (e.type === "template") what = !e.after ? "deleted" : !e.before ? "created" : "changed";
    lines.push(el("span", { class: "hint block" }, "template “" + e.template + "” " + what));
  }
  if (e.bulk_id) lines.push(el("span", { class: "hint block" }, "bulk change " + e.bulk_id));
  if (!lines.length) lines.push(e.type === "manual" || e.type === "automatic" ? "new period, same limit" : "no change");
  return lines;
}

function auditUser(e) {
  if (e.user_id) return e.user_id;
  if (e.scope && e.budget_id) return e.scope + " " + e.budget_id;
  if (e.type === "defaults") return "(defaults)";
  if (e.type === "template") return "(template)";
  return "–";
}

async function loadAudit() {
  const { data } = await api("/admin/audit" + query({
    user_id: audit.user, type: audit.type, limit: PAGE, cursor: audit.cursors[audit.index],
  }));
  $("audit-csv").dataset.csv = auditCSV();
  const tb = $("audit-body");
  clear(tb);
  const list = data.entries || [];
  if (!list.length) tb.appendChild(el("tr", {}, el("td", { colspan: "7" }, "No entries.")));
  for (const e of list) {
    const reset = e.type === "manual" || e.type === "automatic";
    tb.appendChild(el("tr", {},
      el("td", { "data-label": "When" }, fmtDate(e.at, true)),
      el("td", { "data-label": "User" }, auditUser(e)),
      el("td", { "data-label": "Type" }, TYPE_WORDS[e.type] || e.type),
      el("td", { "data-label": "By" }, e.actor + (e.actor_admin ? " (admin)" : "")),
      el("td", { "data-label": "Reason", class: e.reason ? null : "empty" }, e.reason || ""),
      el("td", { "data-label": "What changed" }, whatChanged(e)),
      // What was spent means something only where a period ended.
      el("td", { class: reset ? "num" : "num empty", "data-label": "Spent before" }, reset ? fmtUSD(e.previous_spent_usd) : "")));
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
  buildFields(fields, "d", {
    budget_visible_to_user: "New users see their budget",
  }, {
    budget_visible_to_user: "The switch “Budgets for regular users” at the top sets this too, and changes existing users with it.",
  });
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
    await loadAccess().catch(report);
  } catch (err) {
    if (err.status === 412) {
      setText("defaults-error", "The defaults were changed elsewhere while you edited them; nothing was saved. " +
        "Your edits are kept on top of the latest values: check them and save again.");
      await loadDefaults(true).catch(report);
      restore(dform, body);
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
  } catch (err) {
    report(err);
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  if (first) showMessage("");
  // Each part shows what it can; a part that fails says so.
  const failed = (await Promise.allSettled([loadAccess(), loadGroups(), loadAudit(), loadDefaults(first), loadTemplates()]))
    .filter((r) => r.status === "rejected");
  if (failed.length) report(failed[0].reason);
}

function start() {
  stop();
  users.cursors = [""];
  users.index = 0;
  audit.cursors = [""];
  audit.index = 0;
  defaultsShown = null;
  // Every signed-in caller has a budget page of their own; admins always
  // see theirs.
  $("nav-user").hidden = !getToken();
  refresh(true);
  timer = setInterval(() => {
    if (![dlg, rdlg, udlg, tdlg, xdlg, groupDialog].some((d) => d.open)) refresh(false);
  }, REFRESH_MS);
}

$("filter-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  users.q = $("f-q").value.trim();
  users.level = $("f-level").value;
  users.projected = $("f-projected").checked;
  users.cursors = [""];
  users.index = 0;
  // "Every user matching" meant the old search: picked users stay.
  selection.match = null;
  loadUsers().catch(report);
});
$("f-level").addEventListener("change", () => $("filter-form").requestSubmit());
$("f-projected").addEventListener("change", () => $("filter-form").requestSubmit());
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
  audit.type = $("a-type").value;
  audit.cursors = [""];
  audit.index = 0;
  loadAudit().catch(report);
});
$("a-type").addEventListener("change", () => $("audit-form").requestSubmit());
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
initGroups({
  handle, report, whatChanged, typeWords: TYPE_WORDS,
  defaults: () => defaults,
  changed: () => loadUsers().catch(report),
});
setupLogin(start);
