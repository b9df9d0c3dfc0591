// The plan fields an admin edits, in the Configure dialog, the defaults
// form and the template dialog: one labelled input per setting.
import { el, clear } from "./common.js";

// The settings: [member, label, kind].
export const SETTINGS = [
  ["limit_usd", "Limit (USD)", "text"],
  ["budget_period", "Period", "period"],
  ["custom_period_days", "Custom period (days)", "int"],
  ["timezone", "Timezone (IANA, e.g. Europe/Paris)", "text"],
  ["enforce_budget", "Enforce: block calls over the limit", "bool"],
  ["alert_threshold_yellow", "Yellow threshold (%)", "text"],
  ["alert_threshold_orange", "Orange threshold (%)", "text"],
  ["alert_threshold_red", "Red threshold (%)", "text"],
  ["budget_visible_to_user", "User can see the budget", "bool"],
  ["user_can_modify_limit", "User can change limit, period, timezone, enforcement and alert thresholds", "bool"],
  ["user_can_reset_budget", "User can reset the budget", "bool"],
];

// The settings only users' budgets have: a team's or an org's budget has
// no user to show it to.
export const PERMISSIONS = ["budget_visible_to_user", "user_can_modify_limit", "user_can_reset_budget"];

// buildFields fills container with one labelled input per setting; ids
// take prefix. labels overrides labels by member; hints adds a hint under
// a field, by member (its id is prefix-member-hint); skip lists members
// left out (fill and read then ignore them too).
export function buildFields(container, prefix, labels, hints, skip) {
  clear(container);
  const grid = el("div", { class: "grid" });
  for (const [member, label, kind] of SETTINGS) {
    if (skip && skip.includes(member)) continue;
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
    const lab = el("label", { for: id, id: id + "-label" }, (labels && labels[member]) || label);
    const hint = hints && hints[member] ? el("p", { class: "hint", id: id + "-hint" }, hints[member]) : null;
    if (hint) input.setAttribute("aria-describedby", id + "-hint");
    const box = kind === "bool"
      ? el("div", { class: "field check", "data-field": member }, input, lab, hint, el("p", { class: "error" }))
      : el("div", { class: "field", "data-field": member }, lab, input, hint, el("p", { class: "error" }));
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

// fill shows the settings s in the fields of container.
export function fill(container, s) {
  for (const [member, , kind] of SETTINGS) {
    const input = container.querySelector('[name="' + member + '"]');
    if (!input) continue;
    const v = s[member];
    if (kind === "bool") input.checked = !!v;
    else input.value = v === undefined || v === null ? "" : String(v);
  }
  container.querySelector('[name="budget_period"]').dispatchEvent(new Event("change"));
}

// read returns the members whose value differs from base (all of them
// when base is null).
export function read(container, base) {
  const out = {};
  for (const [member, , kind] of SETTINGS) {
    const input = container.querySelector('[name="' + member + '"]');
    if (!input) continue;
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

// restore puts values (member → value) back into the inputs of root,
// after a reload that kept the user's edits.
export function restore(root, values) {
  for (const [m, v] of Object.entries(values)) {
    const input = root.querySelector('[name="' + m + '"]');
    if (!input) continue;
    if (input.type === "checkbox") input.checked = v;
    else input.value = String(v);
  }
  const period = root.querySelector('[name="budget_period"]');
  if (period) period.dispatchEvent(new Event("change"));
}

// periodWords says how often a plan's period starts again: "a week".
export function periodWords(s) {
  switch (s.budget_period) {
    case "daily": return "a day";
    case "weekly": return "a week";
    case "monthly": return "a month";
    case "custom": return "every " + s.custom_period_days + " days";
    default: return s.budget_period || "";
  }
}

// permissionWords lists what a plan lets its user do.
export function permissionWords(s) {
  const can = [];
  if (s.budget_visible_to_user) can.push("sees it");
  else can.push("hidden from the user");
  if (s.user_can_modify_limit) can.push("can modify");
  else if (s.budget_visible_to_user) can.push("view-only");
  if (s.user_can_reset_budget) can.push("can reset");
  return can.join(", ");
}
