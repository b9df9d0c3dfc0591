// Usage, as the user's page and the admin's view of one user show it: the
// period's breakdown as two bar charts, and the history as table rows
// (stacked cards on a phone).
import { el, clear, fmtUSD, fmtNum, fmtDate } from "./common.js";
import { barChart } from "./charts.js";

// drawBreakdown draws a breakdown (GET .../usage/breakdown) into two
// figures, keeping their captions.
export function drawBreakdown(byProvider, byModel, data) {
  const draw = (fig, items, key, title) => {
    for (const n of [...fig.childNodes]) if (n.nodeName.toLowerCase() !== "figcaption") n.remove();
    fig.appendChild(barChart(items.map((i) => ({
      label: i[key] || "(unknown)", value: Number(i.cost_usd) || 0,
      text: fmtUSD(i.cost_usd),
    })), title));
  };
  draw(byProvider, data.by_provider || [], "provider", "Spending by provider");
  draw(byModel, data.by_model || [], "model", "Spending by model");
}

// HISTORY_COLUMNS label the history's cells (the cards' labels on a phone).
const HISTORY_COLUMNS = ["When", "Provider", "Model", "Input tokens", "Output tokens", "Cost"];

// historyRows shows usage records (GET .../usage/history) in tbody.
export function historyRows(tbody, rows) {
  clear(tbody);
  if (!rows.length) {
    tbody.appendChild(el("tr", {}, el("td", { colspan: "6" }, "No usage recorded.")));
    return;
  }
  for (const u of rows) {
    const cells = [fmtDate(u.at, true), u.provider, u.model, fmtNum(u.input_tokens), fmtNum(u.output_tokens), fmtUSD(u.cost_usd)];
    tbody.appendChild(el("tr", {}, cells.map((c, i) =>
      el("td", { class: i >= 3 ? "num" : null, "data-label": HISTORY_COLUMNS[i] }, c))));
  }
}
