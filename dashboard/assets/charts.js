// A small horizontal bar chart drawn as inline SVG. Labels are text nodes;
// nothing is parsed as markup.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.appendChild(document.createTextNode(text));
  return e;
}

// barChart returns an <svg> for items [{label, value, text}], largest
// first as given. title names the chart for assistive technology; a
// visually hidden table would duplicate it, so each bar has a <title>.
export function barChart(items, title) {
  const rowH = 28;
  const width = 320; // viewBox units; the SVG scales to its container
  const labelW = 120;
  const valueW = 70;
  const barMax = width - labelW - valueW - 8;
  const height = Math.max(1, items.length) * rowH + 4;
  const root = svg("svg", {
    viewBox: "0 0 " + width + " " + height,
    width: "100%",
    role: "img",
    "aria-label": title,
    class: "chart",
    preserveAspectRatio: "xMinYMin meet",
  });
  root.appendChild(svg("title", {}, title));
  if (!items.length) {
    root.appendChild(svg("text", { x: 0, y: 18, class: "chart-empty" }, "No spending yet"));
    return root;
  }
  const max = Math.max(...items.map((i) => i.value), 0) || 1;
  items.forEach((it, i) => {
    const y = i * rowH + 2;
    const g = svg("g", {});
    g.appendChild(svg("title", {}, it.label + ": " + it.text));
    g.appendChild(svg("text", { x: 0, y: y + 17, class: "chart-label" }, truncate(it.label, 18)));
    const w = Math.max(2, (it.value / max) * barMax);
    g.appendChild(svg("rect", { x: labelW, y: y + 4, width: w.toFixed(1), height: rowH - 10, rx: 3, class: "chart-bar" }));
    g.appendChild(svg("text", { x: width, y: y + 17, "text-anchor": "end", class: "chart-value" }, it.text));
    root.appendChild(g);
  });
  return root;
}

function truncate(s, n) {
  s = String(s);
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

// localDates lists the calendar dates ("2006-01-02") of the time zone tz
// from start to end (instants), as the API counts days: one per local
// day, a day across a DST change included once.
export function localDates(start, end, tz) {
  let fmt;
  try {
    fmt = new Intl.DateTimeFormat("en-CA", { timeZone: tz || "UTC", year: "numeric", month: "2-digit", day: "2-digit" });
  } catch (e) {
    fmt = new Intl.DateTimeFormat("en-CA", { timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit" });
  }
  const out = [];
  const t0 = new Date(start).getTime();
  const t1 = new Date(end).getTime();
  if (!(t1 > t0)) return out;
  // Noon-ish steps: a DST change moves them by an hour, never across a
  // date; the last instant of the range gives the last date.
  const seen = new Set();
  const add = (t) => {
    const d = fmt.format(new Date(t));
    if (!seen.has(d)) {
      seen.add(d);
      out.push(d);
    }
  };
  add(t0);
  for (let t = t0 + 12 * 3600e3; t < t1; t += 24 * 3600e3) add(t);
  add(t1 - 1);
  return out;
}

// dailyChart returns an <svg> bar chart of spend per day: one bar per
// date of dates, from byDate (date → {value, text}), the previous
// period's days (prev, by position, or null) as thinner pale bars behind,
// and a dashed line at pace (the spend per day that uses the limit by the
// period's end; null for none). Heights come from the numbers; every text
// shown is the API's own decimal formatted by the caller.
export function dailyChart({ dates, byDate, prev, pace, paceText, width: w }, title) {
  // One unit of the drawing per CSS pixel of its box, so that its text
  // keeps its size on a phone.
  const width = Math.max(300, Math.round(w || 900));
  const height = width < 600 ? 180 : 220;
  const left = 8;
  const top = 18;
  const bottom = 28;
  const plotH = height - top - bottom;
  const root = svg("svg", {
    viewBox: "0 0 " + width + " " + height,
    width: "100%",
    role: "img",
    "aria-label": title,
    class: "chart daily-chart",
    preserveAspectRatio: "xMinYMin meet",
  });
  root.appendChild(svg("title", {}, title));
  const n = Math.max(1, dates.length);
  const slot = (width - left * 2) / n;
  const values = dates.map((d) => (byDate[d] ? byDate[d].value : 0));
  const prevValues = prev ? prev.map((p) => (p ? p.value : 0)) : [];
  const max = Math.max(...values, ...prevValues, pace || 0, 0) || 1;
  const y = (v) => top + plotH - (v / max) * plotH;
  root.appendChild(svg("line", { x1: left, x2: width - left, y1: top + plotH, y2: top + plotH, class: "chart-axis" }));
  dates.forEach((d, i) => {
    const x = left + i * slot;
    const g = svg("g", { class: "day", "data-date": d });
    const p = prev && prev[i];
    if (p && p.value > 0) {
      const h = Math.max(1, (p.value / max) * plotH);
      const r = svg("rect", { x: (x + slot * 0.1).toFixed(1), y: (top + plotH - h).toFixed(1), width: (slot * 0.8).toFixed(1), height: h.toFixed(1), class: "chart-prev" });
      r.appendChild(svg("title", {}, "Previous period, day " + (i + 1) + ": " + p.text));
      g.appendChild(r);
    }
    const cur = byDate[d];
    if (cur && cur.value > 0) {
      const h = Math.max(1, (cur.value / max) * plotH);
      const r = svg("rect", { x: (x + slot * 0.25).toFixed(1), y: (top + plotH - h).toFixed(1), width: Math.max(1, slot * 0.5).toFixed(1), height: h.toFixed(1), rx: 2, class: "chart-bar" });
      r.appendChild(svg("title", {}, d + ": " + cur.text));
      g.appendChild(r);
    }
    // A date label every few days, so they never overlap.
    const every = Math.ceil(n / Math.max(2, Math.floor(width / 70)));
    if (i % every === 0) {
      g.appendChild(svg("text", { x: (x + slot / 2).toFixed(1), y: height - 8, "text-anchor": "middle", class: "chart-label" }, d.slice(5)));
    }
    root.appendChild(g);
  });
  if (pace > 0) {
    const py = y(pace).toFixed(1);
    root.appendChild(svg("line", { x1: left, x2: width - left, y1: py, y2: py, class: "chart-pace" }));
    root.appendChild(svg("text", { x: width - left, y: Math.max(12, py - 4), "text-anchor": "end", class: "chart-pace-label" }, paceText || ""));
  }
  return root;
}
