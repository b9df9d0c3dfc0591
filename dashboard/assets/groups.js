// The admin page's teams and orgs: their list (by kind, search and
// level), and the dialog that configures one: its plan and model caps,
// its org (a team's), its members, what it spent this period by model and
// its audit entries. admin.js wires it in with initGroups.
import {
  api, query, segment, el, clear, setText, fmtUSD, fmtDate, plural, levelBadge, LEVELS, progressBar,
  showMessage, showProblem, clearErrors,
} from "./common.js";
import { SETTINGS, PERMISSIONS, buildFields, fill, read, restore } from "./fields.js";
import { barChart } from "./charts.js";

const PAGE = 25;
const AUDIT_PAGE = 10;
const HISTORY_ROWS = 10;
const MAX_CAPS = 16; // budget.MaxModelCaps
const $ = (id) => document.getElementById(id);

const WORDS = {
  team: { one: "team", many: "teams", title: "Team", titles: "Teams" },
  org: { one: "org", many: "orgs", title: "Org", titles: "Orgs" },
};

// The API's path of a team or an org: /admin/teams/research.
const pathOf = (kind, id) => "/admin/" + kind + "s/" + segment(id);

let ctx = null; // what admin.js lends: see initGroups
const list = { kind: "team", q: "", level: "", cursors: [""], index: 0 };
// The budget in the dialog: kind, id ("" until created), its budgetJSON
// and ETag.
let editing = null;
const gaudit = { cursors: [""], index: 0 };

const dlg = $("group");
const gform = $("group-form");
const gfields = $("group-fields");

// ---- the list ----

function kindWords() {
  return WORDS[list.kind];
}

// buttonLabelled returns the list's button whose aria-label is label.
function buttonLabelled(label) {
  return [...$("groups-body").querySelectorAll("button")].find((b) => b.getAttribute("aria-label") === label);
}

export async function loadGroups() {
  const w = kindWords();
  const { data } = await api("/admin/budgets" + query({
    kind: list.kind, q: list.q, level: list.level, limit: PAGE, cursor: list.cursors[list.index],
  }));
  // A button of the list with the focus keeps it on its new node.
  const active = document.activeElement;
  const focused = active && $("groups-body").contains(active) ? active.getAttribute("aria-label") : null;
  const s = data.summary || {};
  setText("g-summary", s.budgets === undefined ? "" :
    plural(s.budgets, w.one, w.many) + " · " + fmtUSD(s.total_limit_usd) + " allocated · " +
    fmtUSD(s.total_spent_usd) + " spent · " + (s.over_budget || 0) + " over budget");
  const tb = $("groups-body");
  clear(tb);
  const rows = data.budgets || [];
  if (!rows.length) {
    tb.appendChild(el("tr", {}, el("td", { colspan: "7" }, list.q || list.level
      ? "No " + w.many + " match."
      : "No " + w.many + " yet: “New " + w.one + "…” creates one.")));
  }
  for (const b of rows) {
    const conf = el("button", { type: "button", class: "secondary small", "aria-label": "Configure " + w.one + " " + b.id }, "Configure");
    conf.addEventListener("click", () => openGroup(list.kind, b.id));
    const level = LEVELS[b.alert_level] ? b.alert_level : "green";
    const caps = b.model_caps || [];
    tb.appendChild(el("tr", { class: "lvl-row lvl-" + level, "data-id": b.id },
      el("th", { scope: "row", class: "user-cell" }, el("span", { class: "uid" }, b.id),
        b.org ? el("span", { class: "hint block" }, "Org: " + b.org) : null,
        b.admin_notes ? el("span", { class: "hint block" }, b.admin_notes) : null),
      el("td", { "data-label": "Status", class: "status-cell" }, levelBadge(b.alert_level), " ",
        el("span", { class: "hint" }, (parseFloat(b.percent_used) || 0).toFixed(1) + "%"),
        b.enforce_budget === false ? el("span", { class: "hint block" }, "not enforced") : null),
      el("td", { class: "num", "data-label": "Spent" }, fmtUSD(b.spent_usd)),
      el("td", { class: "num", "data-label": "Limit" }, fmtUSD(b.limit_usd)),
      el("td", { "data-label": "Model caps", class: caps.length ? null : "empty" }, caps.length
        ? caps.map((c) => el("span", { class: "cap-line block" }, el("span", { class: "pattern" }, c.pattern), " " +
          fmtUSD(c.spent_usd) + " of " + fmtUSD(c.limit_usd),
        c.alert_level && c.alert_level !== "green" ? [" ", levelBadge(c.alert_level)] : null))
        : "none"),
      el("td", { "data-label": "Period" }, b.budget_period + (b.budget_period === "custom" ? " (" + b.custom_period_days + " d)" : ""),
        el("span", { class: "hint block" }, "until " + fmtDate(b.current_period_end))),
      el("td", { class: "row-actions" }, conf)));
  }
  list.cursors.length = list.index + 1;
  if (data.next_cursor) list.cursors.push(data.next_cursor);
  $("g-next").disabled = !data.next_cursor;
  $("g-first").disabled = list.index === 0;
  if (focused) {
    const b = buttonLabelled(focused);
    if (b) b.focus();
  }
}

function setKind(kind) {
  list.kind = kind;
  const w = kindWords();
  setText("g-q-label", "Search " + w.one + " ID");
  setText("g-new", "New " + w.one + "…");
  setText("g-col-id", w.title);
  setText("groups-caption", w.titles + " and their budgets");
}

function reloadList() {
  list.cursors = [""];
  list.index = 0;
  return loadGroups().catch(ctx.report);
}

// ---- the dialog: plan, org and model caps ----

let capSeq = 0;

// capRow is one model cap's row: its pattern, its limit, where it stands
// (a saved cap) and its Remove button.
function capRow(c) {
  const n = ++capSeq;
  const pid = "cap-" + n + "-pattern";
  const lid = "cap-" + n + "-limit";
  const pattern = el("input", { id: pid, class: "cap-pattern", autocomplete: "off", spellcheck: "false", placeholder: "gpt-4o*" });
  const limit = el("input", { id: lid, class: "cap-limit", autocomplete: "off", inputmode: "decimal", placeholder: "50" });
  pattern.value = c ? c.pattern || "" : "";
  limit.value = c ? c.limit_usd || "" : "";
  const remove = el("button", { type: "button", class: "secondary small cap-remove" }, "Remove");
  const saved = c && c.spent_usd !== undefined;
  const li = el("li", { class: "cap-row" },
    el("div", { class: "field" }, el("label", { for: pid }, "Model pattern"), pattern, el("p", { class: "error" })),
    el("div", { class: "field" }, el("label", { for: lid }, "Cap (USD)"), limit, el("p", { class: "error" })),
    saved ? el("p", { class: "hint cap-status" }, levelBadge(c.alert_level), " " + fmtUSD(c.spent_usd) + " spent, " +
      fmtUSD(c.remaining_usd) + " left this period") : null,
    el("div", { class: "cap-actions" }, remove));
  pattern.addEventListener("input", renumberCaps);
  remove.addEventListener("click", () => {
    const next = li.nextElementSibling || li.previousElementSibling;
    li.remove();
    renumberCaps();
    (next ? next.querySelector(".cap-remove") : $("cap-add")).focus();
  });
  return li;
}

// renumberCaps names each row's fields after its place (the API's
// problems name model_caps[i].pattern), and labels its Remove button.
function renumberCaps() {
  const rows = [...$("caps-list").children];
  rows.forEach((li, i) => {
    const [pf, lf] = li.querySelectorAll(".field");
    pf.dataset.field = "model_caps[" + i + "].pattern";
    lf.dataset.field = "model_caps[" + i + "].limit_usd";
    const p = li.querySelector(".cap-pattern").value.trim();
    li.querySelector(".cap-remove").setAttribute("aria-label", p ? "Remove the cap on " + p : "Remove model cap " + (i + 1));
  });
  $("cap-add").disabled = rows.length >= MAX_CAPS;
}

function showCaps(caps) {
  const ul = $("caps-list");
  clear(ul);
  for (const c of caps || []) ul.appendChild(capRow(c));
  renumberCaps();
}

// readCaps returns the caps the rows hold; a row left empty is none.
function readCaps() {
  const out = [];
  for (const li of $("caps-list").children) {
    const pattern = li.querySelector(".cap-pattern").value.trim();
    const limit = li.querySelector(".cap-limit").value.trim();
    if (pattern || limit) out.push({ pattern, limit_usd: limit });
  }
  return out;
}

const capsKey = (caps) => JSON.stringify((caps || []).map((c) => [c.pattern, String(c.limit_usd)]));

$("cap-add").addEventListener("click", () => {
  if ($("caps-list").children.length >= MAX_CAPS) return;
  const li = capRow(null);
  $("caps-list").appendChild(li);
  renumberCaps();
  li.querySelector(".cap-pattern").focus();
});

// showStatus shows where the budget in the dialog stands.
function showStatus(b) {
  const box = $("group-status");
  clear(box);
  if (!b) return;
  box.append(
    el("p", { class: "level-line" }, levelBadge(b.alert_level), " ",
      el("span", { class: "pct" }, (parseFloat(b.percent_used) || 0).toFixed(1) + "% used"), " ",
      el("span", { class: "hint" }, fmtUSD(b.spent_usd) + " of " + fmtUSD(b.limit_usd) + ", " + fmtUSD(b.remaining_usd) +
        " left; resets " + fmtDate(b.current_period_end, true) + ".")),
    progressBar(b.percent_used, b.alert_level, "Spent of the limit"));
}

// showBudget fills the dialog from a budgetJSON.
function showBudget(b, etag) {
  editing.base = b;
  editing.etag = etag;
  fill(gfields, b);
  $("g-org").value = b.org || "";
  $("g-notes").value = b.admin_notes || "";
  showCaps(b.model_caps);
  showStatus(b);
}

// editMode turns the dialog to an existing team or org: its ID fixed,
// and its members, spending and audit entries shown.
function editMode(kind, id) {
  const w = WORDS[kind];
  editing.id = id;
  $("g-id").value = id;
  $("g-id").readOnly = true;
  $("g-id-hint").hidden = true;
  setText("group-h", w.title + " " + id);
  setText("members-h", kind === "team" ? "Members" : "Members (users, and teams in the org)");
  setText("m-user-label", kind === "team" ? "Add a member (user ID)" : "Add a member (ID)");
  $("m-kind-box").hidden = kind !== "org";
  $("m-kind").value = "user";
  $("m-user").value = "";
  clearErrors($("member-form"));
  clear($("member-result"));
  $("group-more").hidden = false;
  gaudit.cursors = [""];
  gaudit.index = 0;
  loadMore();
}

function loadMore() {
  Promise.allSettled([loadMembers(), loadGroupUsage(), loadGroupAudit()]).then((rs) => {
    const bad = rs.find((r) => r.status === "rejected");
    if (bad) ctx.report(bad.reason);
  });
}

export async function openGroup(kind, id) {
  const w = WORDS[kind];
  opener = id ? "Configure " + w.one + " " + id : "";
  clearErrors(gform);
  setText("group-saved", "");
  $("group-reload").hidden = true;
  buildFields(gfields, "g", { limit_usd: "Limit (USD) of the " + w.one, enforce_budget: "Enforce: refuse members' calls over the limit" },
    null, PERMISSIONS);
  editing = { kind, id: "", base: null, etag: null };
  $("g-org-box").hidden = kind !== "team";
  setText("g-id-label", w.title + " ID");
  $("g-id").readOnly = false;
  $("g-id-hint").hidden = false;
  $("g-id").value = "";
  $("g-org").value = "";
  $("g-notes").value = "";
  $("group-more").hidden = true;
  showStatus(null);
  if (id) {
    try {
      const { data, etag } = await api(pathOf(kind, id));
      showBudget(data, etag);
    } catch (err) {
      ctx.report(err);
      return;
    }
    editMode(kind, id);
  } else {
    setText("group-h", "New " + w.one);
    const d = ctx.defaults();
    if (d) fill(gfields, d); // a new team starts from the defaults
    showCaps([]);
  }
  dlg.showModal();
  (id ? gfields.querySelector("input, select") : $("g-id")).focus();
}

function groupBody() {
  const base = editing.base;
  const body = read(gfields, base);
  const caps = readCaps();
  if (!base || capsKey(caps) !== capsKey(base.model_caps)) body.model_caps = caps;
  const notes = $("g-notes").value;
  if (!base ? notes !== "" : notes !== (base.admin_notes || "")) body.admin_notes = notes;
  return body;
}

// exists reports whether the team or org id has a budget, from the list
// (a search for its ID), so that no failed request shows in the console.
async function exists(kind, id) {
  let cursor = "";
  for (let page = 0; page < 10; page++) {
    const { data } = await api("/admin/budgets" + query({ kind, q: id, limit: 500, cursor }));
    if ((data.budgets || []).some((b) => b.id === id)) return true;
    if (!data.next_cursor) return false;
    cursor = data.next_cursor;
  }
  return false;
}

// fieldOf is where a problem of the budget's routes shows in the dialog.
function fieldOf(f) {
  if (f === "team_id" || f === "org_id" || f === "scope") return "id";
  return f;
}

gform.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors(gform);
  setText("group-saved", "");
  const kind = editing.kind;
  const w = WORDS[kind];
  const id = editing.id || $("g-id").value.trim();
  if (!id) {
    showProblem(gform, { problem: { field: "id", detail: "Enter the " + w.one + "'s ID." } });
    return;
  }
  const body = groupBody();
  const org = $("g-org").value.trim();
  const orgChange = kind === "team" && org !== ((editing.base && editing.base.org) || "");
  if (editing.base && !Object.keys(body).length && !orgChange) {
    setText("group-error", "Nothing changed.");
    return;
  }
  const created = !editing.id;
  const save = $("group-save");
  save.disabled = true;
  try {
    // PUT would create the budget, or change one that exists: "New"
    // must not change another's plan.
    if (created && await exists(kind, id)) {
      showProblem(gform, { problem: { field: "id", detail: "A " + w.one + " “" + id + "” exists already: configure it from the list." } });
      return;
    }
    if (created || Object.keys(body).length) {
      try {
        await api(pathOf(kind, id), { method: "PUT", body, etag: editing.etag || undefined });
      } catch (err) {
        if (err.status === 401 || err.status === 403) return ctx.handle(err);
        if (err.status === 412) {
          setText("group-error", "Someone else changed this " + w.one + " after you opened this dialog, so nothing was saved. " +
            "Your edits are still here: load the latest values (your edits are kept on top of them), check them, then save again.");
          $("group-reload").hidden = false;
          $("group-reload").focus();
          return;
        }
        const p = Object.assign({}, err.problem);
        p.field = fieldOf(p.field);
        showProblem(gform, { problem: p, message: err.message }, $("group-error"));
        return;
      }
    }
    let saved = created ? "Created " + w.one + " “" + id + "”." : "Saved " + w.one + " “" + id + "”.";
    if (orgChange) {
      try {
        // A team belongs to one org: moving it takes it out first.
        const old = (editing.base && editing.base.org) || "";
        if (old && org) await api(pathOf("team", id) + "/org", { method: "PUT", body: { org: "" } });
        await api(pathOf("team", id) + "/org", { method: "PUT", body: { org } });
        saved += org ? " It is in org “" + org + "” now." : " It is in no org now.";
      } catch (err) {
        if (ctx.handle(err)) return;
        const p = Object.assign({}, err.problem, { field: "org" });
        if (err.status === 404) p.detail = "There is no org “" + org + "”: create it first (show Orgs above, then “New org…”).";
        p.detail = (p.detail || err.message) + (created || Object.keys(body).length ? " The rest was saved." : "");
        showProblem(gform, { problem: p });
        saved = "";
      }
    }
    const fresh = await api(pathOf(kind, id));
    if (created) editMode(kind, id);
    else loadGroupAudit().catch(ctx.report);
    showBudget(fresh.data, fresh.etag);
    if (saved) {
      setText("group-saved", saved + (created ? " Add its members below." : ""));
      showMessage(saved, "ok");
    }
    reloadList();
  } catch (err) {
    if (!ctx.handle(err)) setText("group-error", err.message);
  } finally {
    save.disabled = false;
  }
});

$("group-reload").addEventListener("click", async () => {
  const mine = groupBody();
  const org = $("g-org").value;
  try {
    const { data, etag } = await api(pathOf(editing.kind, editing.id));
    const changed = SETTINGS.filter(([m]) => m in data && String(data[m]) !== String(editing.base[m])).map(([, l]) => l);
    if (capsKey(data.model_caps) !== capsKey(editing.base.model_caps)) changed.push("Model caps");
    showBudget(data, etag);
    $("g-org").value = org;
    if ("admin_notes" in mine) $("g-notes").value = mine.admin_notes;
    if ("model_caps" in mine) showCaps(mine.model_caps);
    delete mine.admin_notes;
    delete mine.model_caps;
    restore(gfields, mine);
    $("group-reload").hidden = true;
    setText("group-error", changed.length
      ? "Loaded the latest version. Changed meanwhile: " + changed.join(", ") + ". Your edits are applied on top; save to confirm."
      : "Loaded the latest version; your edits are applied on top. Save to confirm.");
  } catch (err) {
    ctx.report(err);
  }
});

// Closed, the dialog gives the focus back to the button that opened it,
// or to its new node when the list was drawn again meanwhile (a member
// added, a save).
let opener = "";
dlg.addEventListener("close", () => {
  const a = document.activeElement;
  // Where the browser put it (if anywhere): the old node can be gone,
  // and the focus can stay on the closed dialog's field until the next
  // rendering.
  if (opener && (!a || a === document.body || !a.isConnected || dlg.contains(a))) {
    const b = buttonLabelled(opener);
    (b || $("g-new")).focus();
  }
});

const closeGroup = () => dlg.close();
$("group-cancel").addEventListener("click", closeGroup);
$("group-close").addEventListener("click", closeGroup);

// ---- members ----

async function loadMembers() {
  const { kind, id } = editing;
  const ul = $("members-list");
  let members;
  try {
    const { data } = await api(pathOf(kind, id) + "/members");
    members = data.members || [];
  } catch (err) {
    if (err.status !== 404 && err.status !== 405) throw err;
    clear(ul);
    ul.appendChild(el("li", { class: "hint" }, "The member list of an org is not available from this server; its count is " +
      String((editing.base && editing.base.members) || 0) + "."));
    return;
  }
  clear(ul);
  if (!members.length) ul.appendChild(el("li", { class: "hint" }, "No members yet."));
  for (const m of members) {
    const isTeam = !m.user_id && m.team_id;
    const who = isTeam ? m.team_id : m.user_id;
    const remove = el("button", { type: "button", class: "secondary small",
      "aria-label": "Remove " + (isTeam ? "team " : "") + who + " from " + kind + " " + id }, "Remove");
    remove.addEventListener("click", () => removeMember(isTeam ? "team" : "user", who, remove));
    ul.appendChild(el("li", {}, el("span", { class: "uid" }, who), isTeam ? el("span", { class: "hint" }, " (team)") : null, " ", remove));
  }
}

// membership reads a user's teams and org, and the ETag of their settings.
async function membership(userId) {
  const { data, etag } = await api("/admin/users/" + segment(userId));
  return { teams: data.teams || [], org: data.org || "", etag };
}

async function addMember(kind, id, memberKind, who) {
  if (kind === "team") {
    await api(pathOf("team", id) + "/members", { method: "POST", body: { user_id: who } });
  } else if (memberKind === "team") {
    await api(pathOf("team", who) + "/org", { method: "PUT", body: { org: id } });
  } else {
    const m = await membership(who);
    if (m.org === id) return false;
    if (m.org) {
      const err = new Error(who + " is in org “" + m.org + "”: a user belongs to one org; remove them there first.");
      err.problem = { field: "user_id", detail: err.message };
      throw err;
    }
    await api("/admin/users/" + segment(who) + "/membership", { method: "PUT", body: { teams: m.teams, org: id }, etag: m.etag });
  }
  return true;
}

$("member-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = $("member-form");
  clearErrors(form);
  clear($("member-result"));
  const who = $("m-user").value.trim();
  const memberKind = editing.kind === "org" ? $("m-kind").value : "user";
  if (!who) {
    showProblem(form, { problem: { field: "user_id", detail: "Enter the ID of the " + memberKind + " to add." } });
    return;
  }
  const btn = $("member-add");
  btn.disabled = true;
  try {
    const added = await addMember(editing.kind, editing.id, memberKind, who);
    $("m-user").value = "";
    $("member-result").appendChild(el("p", { class: "result-ok" }, added
      ? "Added " + who + " to " + editing.kind + " “" + editing.id + "”."
      : who + " is a member already."));
    await afterMembers();
    $("m-user").focus();
  } catch (err) {
    if (err.status === 401 || err.status === 403) return ctx.handle(err);
    const p = Object.assign({}, err.problem);
    let detail = p.detail || err.message;
    if (err.status === 404 && (!p.field || p.field === "user_id")) {
      detail = memberKind === "team" ? "There is no team “" + who + "”." : who + " has no budget yet: configure the user first (Users, “Configure a user…”).";
    }
    showProblem(form, { problem: { field: "user_id", detail } });
  } finally {
    btn.disabled = false;
  }
});

async function removeMember(memberKind, who, btn) {
  const { kind, id } = editing;
  btn.disabled = true;
  clear($("member-result"));
  try {
    if (kind === "team") {
      await api(pathOf("team", id) + "/members/" + segment(who), { method: "DELETE" });
    } else if (memberKind === "team") {
      await api(pathOf("team", who) + "/org", { method: "PUT", body: { org: "" } });
    } else {
      const m = await membership(who);
      await api("/admin/users/" + segment(who) + "/membership", { method: "PUT", body: { teams: m.teams, org: "" }, etag: m.etag });
    }
    $("member-result").appendChild(el("p", { class: "result-ok" }, "Removed " + who + " from " + kind + " “" + id + "”."));
    await afterMembers();
    $("m-user").focus();
  } catch (err) {
    btn.disabled = false;
    if (!ctx.handle(err)) $("member-result").appendChild(el("p", { class: "error" }, err.message));
  }
}

// afterMembers shows the members, the count and the users' teams anew.
async function afterMembers() {
  await loadMembers();
  const fresh = await api(pathOf(editing.kind, editing.id));
  editing.base.members = fresh.data.members;
  reloadList();
  ctx.changed();
}

// ---- spending and audit entries ----

async function loadGroupUsage() {
  const { kind, id } = editing;
  setText("g-usage-error", "");
  const [{ data: bd }, { data: hist }] = await Promise.all([
    api(pathOf(kind, id) + "/usage/breakdown"),
    api(pathOf(kind, id) + "/usage/history" + query({ limit: HISTORY_ROWS })),
  ]);
  const t = bd.total || {};
  setText("g-usage-summary", "This period (" + fmtDate(bd.from) + " – " + fmtDate(bd.to) + "): " +
    fmtUSD(t.cost_usd || "0") + " over " + plural(t.requests || 0, "call") + " by the members.");
  const fig = $("g-by-model");
  for (const n of [...fig.childNodes]) if (n.nodeName.toLowerCase() !== "figcaption") n.remove();
  fig.appendChild(barChart((bd.by_model || []).map((i) => ({
    label: i.model || "(unknown)", value: parseFloat(i.cost_usd) || 0, text: fmtUSD(i.cost_usd),
  })), "Spending of " + kind + " " + id + " by model"));
  const tb = $("g-history-body");
  clear(tb);
  const rows = hist.usage || [];
  if (!rows.length) tb.appendChild(el("tr", {}, el("td", { colspan: "4" }, "No usage recorded this period.")));
  for (const u of rows) {
    tb.appendChild(el("tr", {},
      el("td", { "data-label": "When" }, fmtDate(u.at, true)),
      el("td", { "data-label": "Member" }, u.user_id || "–"),
      el("td", { "data-label": "Model" }, u.model),
      el("td", { class: "num", "data-label": "Cost" }, fmtUSD(u.cost_usd))));
  }
}

async function loadGroupAudit() {
  const { kind, id } = editing;
  const { data } = await api("/admin/audit" + query({ scope: kind + ":" + id, limit: AUDIT_PAGE, cursor: gaudit.cursors[gaudit.index] }));
  const tb = $("g-audit-body");
  clear(tb);
  const entries = data.entries || [];
  if (!entries.length) tb.appendChild(el("tr", {}, el("td", { colspan: "4" }, "No entries.")));
  for (const e of entries) {
    tb.appendChild(el("tr", {},
      el("td", { "data-label": "When" }, fmtDate(e.at, true)),
      el("td", { "data-label": "Type" }, ctx.typeWords[e.type] || e.type),
      el("td", { "data-label": "By" }, e.actor + (e.actor_admin ? " (admin)" : "")),
      el("td", { "data-label": "What changed" }, ctx.whatChanged(e))));
  }
  gaudit.cursors.length = gaudit.index + 1;
  if (data.next_cursor) gaudit.cursors.push(data.next_cursor);
  $("g-audit-next").disabled = !data.next_cursor;
  $("g-audit-first").disabled = gaudit.index === 0;
}

$("g-audit-next").addEventListener("click", () => {
  if (gaudit.index + 1 < gaudit.cursors.length) gaudit.index++;
  loadGroupAudit().catch(ctx.report);
});
$("g-audit-first").addEventListener("click", () => {
  gaudit.index = 0;
  loadGroupAudit().catch(ctx.report);
});

// ---- wiring ----

// initGroups wires the section. c lends what admin.js has: handle(err)
// (a 401 or 403: true when handled), report(err), defaults() (for a new
// team), whatChanged(entry) and typeWords (the audit log's), and
// changed() (a membership changed: the users list shows teams).
export function initGroups(c) {
  ctx = c;
  setKind("team");
  for (const r of document.querySelectorAll('#g-filter input[name="kind"]')) {
    r.addEventListener("change", () => {
      if (!r.checked) return;
      setKind(r.value);
      reloadList();
    });
  }
  $("g-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    list.q = $("g-q").value.trim();
    list.level = $("g-level").value;
    reloadList();
  });
  $("g-level").addEventListener("change", () => $("g-filter").requestSubmit());
  $("g-next").addEventListener("click", () => {
    if (list.index + 1 < list.cursors.length) list.index++;
    loadGroups().catch(ctx.report);
  });
  $("g-first").addEventListener("click", () => {
    list.index = 0;
    loadGroups().catch(ctx.report);
  });
  $("g-new").addEventListener("click", () => openGroup(list.kind, ""));
}

// groupDialog is the dialog, for the page's refresh to leave alone while
// it is open.
export const groupDialog = dlg;
