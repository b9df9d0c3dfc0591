// Insights, as the user's page and the admin's view of one user show
// them: spend per day with the limit's pace, the forecast in a sentence,
// and the warning banner at orange and red. Money shown is the API's
// decimal strings (fmtUSD); only bar heights are numbers.
import { el, clear, fmtUSD, fmtDate, amountSign, query } from "./common.js";
import { dailyChart, localDates } from "./charts.js";

// MAX_BARS bounds the bars drawn: a long custom period shows its last days.
const MAX_BARS = 92;

// previousRange returns the period before [start, end): as long, ending
// at start.
function previousRange(start, end) {
  const s = new Date(start).getTime();
  const e = new Date(end).getTime();
  return { from: new Date(s - (e - s)).toISOString(), to: new Date(s).toISOString() };
}

// loadDaily reads the spend per day of the current period of st (a status,
// or a user as admins see them) and of the period before, from base (the
// daily route: "/usage/daily", "/admin/users/x/usage/daily"). The previous
// period is left out when it cannot be read (before 1970, or refused).
export async function loadDaily(api, base, st) {
  const cur = await api(base + query({ from: st.current_period_start, to: st.current_period_end }));
  let prev = null;
  const r = previousRange(st.current_period_start, st.current_period_end);
  if (new Date(r.from).getTime() > 0) {
    prev = await api(base + query(r)).then((x) => x.data).catch(() => null);
  }
  return { cur: cur.data, prev };
}

// drawDaily draws the chart into fig (keeping its caption) and a legend.
// st gives the period and the limit.
export function drawDaily(fig, st, daily) {
  for (const n of [...fig.childNodes]) if (n.nodeName.toLowerCase() !== "figcaption") n.remove();
  const tz = (daily.cur && daily.cur.timezone) || st.timezone || "UTC";
  let dates = localDates(st.current_period_start, st.current_period_end, tz);
  const byDate = {};
  for (const d of (daily.cur && daily.cur.days) || []) {
    byDate[d.date] = { value: parseFloat(d.total.cost_usd) || 0, text: fmtUSD(d.total.cost_usd) };
  }
  let prev = null;
  if (daily.prev) {
    const r = previousRange(st.current_period_start, st.current_period_end);
    const pdates = localDates(r.from, r.to, tz);
    const pby = {};
    for (const d of daily.prev.days || []) pby[d.date] = { value: parseFloat(d.total.cost_usd) || 0, text: fmtUSD(d.total.cost_usd) };
    prev = pdates.map((d) => pby[d] || null);
  }
  let shift = 0;
  if (dates.length > MAX_BARS) {
    shift = dates.length - MAX_BARS;
    dates = dates.slice(shift);
    if (prev) prev = prev.slice(shift);
  }
  // The even pace: the limit spread over the period's days.
  const days = dates.length + shift;
  const limit = parseFloat(st.limit_usd);
  const pace = days > 0 && limit > 0 ? limit / days : null;
  const paceText = pace ? "Even pace: " + fmtUSD(pace.toFixed(2)) + " a day" : "";
  const total = daily.cur && daily.cur.total ? daily.cur.total.cost_usd : "0";
  const title = "Spend per day this period, " + dates.length + " days in " + tz + ": " + fmtUSD(total) + " in all" +
    (pace ? "; the limit's even pace is " + fmtUSD(pace.toFixed(2)) + " a day" : "");
  // The figure's width; while the page is still hidden (its first load),
  // the window's less the cards' padding.
  const width = fig.clientWidth || Math.min(1100, document.documentElement.clientWidth - 64);
  fig.appendChild(dailyChart({ dates, byDate, prev, pace, paceText, width }, title));
  fig.appendChild(el("ul", { class: "legend" },
    el("li", {}, el("span", { class: "key key-bar", "aria-hidden": "true" }), "This period"),
    prev && prev.some((p) => p && p.value > 0) ? el("li", {}, el("span", { class: "key key-prev", "aria-hidden": "true" }), "Previous period") : null,
    pace ? el("li", {}, el("span", { class: "key key-pace", "aria-hidden": "true" }), "Even pace to the limit") : null));
}

// forecastSentence says in one sentence where the period ends at the
// current pace; who is "You" on the user's page, a user ID for admins.
export function forecastSentence(st, who) {
  const f = st.forecast;
  if (!f) return "";
  const your = who ? who + "’s" : "your";
  const end = fmtDate(st.current_period_end, true);
  if (amountSign(f.pace_spent_usd) === 0) {
    return (who ? who + " has" : "You have") + " spent nothing in the last " + f.pace_days + " days: at that pace " + your +
      " spend stays at " + fmtUSD(st.spent_usd) + " until the period ends " + end + ".";
  }
  const pace = "At " + your + " pace of the last " + f.pace_days + " days (" + fmtUSD(f.spend_per_day_usd) + " a day), ";
  if (f.limit_reached_at && amountSign(st.remaining_usd) > 0) {
    return pace + (who ? who + " reaches" : "you reach") + " the limit of " + fmtUSD(st.limit_usd) + " around " +
      fmtDate(f.limit_reached_at, true) + ", before the period ends " + end + ".";
  }
  if (amountSign(st.remaining_usd) <= 0) {
    return pace + "the limit of " + fmtUSD(st.limit_usd) + " is already reached; the period ends " + end + ".";
  }
  return pace + (who ? who + " ends" : "you end") + " the period (" + end + ") at about " + fmtUSD(f.projected_spent_usd) +
    " of the limit of " + fmtUSD(st.limit_usd) + ".";
}

// levelBanner returns the warning banner for the budget b that binds (a
// line of GET /status "budgets", or the status itself), or null below
// orange. name names it ("Your budget", "Team “research”"); forecast is
// the status's forecast when b is the user's own budget.
export function levelBanner(b, name, forecast) {
  if (b.alert_level !== "orange" && b.alert_level !== "red") return null;
  const level = b.alert_level;
  const used = (parseFloat(b.percent_used) || 0).toFixed(1) + "%";
  let text;
  if (b.enforce_budget === false) {
    text = name + " is at " + used + " of its limit of " + fmtUSD(b.limit_usd) +
      ". It is not enforced: calls are not refused, but every cost is recorded.";
  } else if (amountSign(b.remaining_usd) <= 0) {
    text = "Calls are being refused until " + fmtDate(b.current_period_end, true) + ", when " + name.charAt(0).toLowerCase() + name.slice(1) +
      " resets: it has nothing left of its limit of " + fmtUSD(b.limit_usd) + ".";
  } else {
    text = "Calls will be refused when the " + fmtUSD(b.remaining_usd) + " left of " + name.charAt(0).toLowerCase() + name.slice(1) +
      " (" + used + " used) is spent" +
      (forecast && forecast.limit_reached_at ? ": at the recent pace, around " + fmtDate(forecast.limit_reached_at, true) + "." : ".") +
      " It resets " + fmtDate(b.current_period_end, true) + ".";
  }
  return el("div", { class: "banner banner-" + level, id: "level-banner", role: "alert", "data-level": level }, text);
}

// showBanner puts the banner (or nothing) into box.
export function showBanner(box, banner) {
  clear(box);
  if (banner) box.appendChild(banner);
  box.hidden = !banner;
}
