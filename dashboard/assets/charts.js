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
