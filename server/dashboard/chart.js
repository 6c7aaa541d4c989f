// A small SVG line chart: series of [x, y] points, linear axes with round ticks, a legend.

const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function fmt(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1000 || a < 0.01) return v.toExponential(1);
  return String(+v.toPrecision(3));
}

// An empty chart: an <svg> (made in the SVG namespace, which document.createElement is not).
export function chartElement(attrs) {
  return el("svg", attrs);
}

// series: [{name, cls, points: [[x, y]], dots: bool}]
export function drawChart(svg, series, { xLabel = "", yLabel = "", width = 640, height = 280 } = {}) {
  while (svg.firstChild) svg.firstChild.remove();
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  const pad = { l: 56, r: 12, t: 28, b: 36 };
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
  svg.dataset.points = String(all.length);
  if (!all.length) {
    svg.append(el("text", { x: width / 2, y: height / 2, class: "chart-empty", "text-anchor": "middle" }, "no data yet"));
    return;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.1, y1 + Math.abs(y1 || 1) * 0.1];
  const yPad = (y1 - y0) * 0.05;
  y0 -= yPad;
  y1 += yPad;
  const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const sy = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const axes = el("g", { class: "axes" });
  for (const t of ticks(y0, y1)) {
    axes.append(el("line", { x1: pad.l, x2: width - pad.r, y1: sy(t), y2: sy(t), class: "grid" }));
    axes.append(el("text", { x: pad.l - 6, y: sy(t) + 4, "text-anchor": "end" }, fmt(t)));
  }
  for (const t of ticks(x0, x1, 6)) {
    axes.append(el("text", { x: sx(t), y: height - pad.b + 16, "text-anchor": "middle" }, fmt(t)));
  }
  axes.append(el("line", { x1: pad.l, x2: pad.l, y1: pad.t, y2: height - pad.b, class: "axis" }));
  axes.append(el("line", { x1: pad.l, x2: width - pad.r, y1: height - pad.b, y2: height - pad.b, class: "axis" }));
  axes.append(el("text", { x: (pad.l + width - pad.r) / 2, y: height - 4, "text-anchor": "middle", class: "label" }, xLabel));
  axes.append(el("text", { x: 12, y: pad.t - 12, class: "label" }, yLabel));
  svg.append(axes);
  let legendX = pad.l + 150;
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
    const g = el("g", { class: `series ${s.cls || `s${i}`}`, "data-series": s.name, "data-count": pts.length });
    if (pts.length > 1) {
      const d = pts.map((p, j) => `${j ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
      g.append(el("path", { d, class: "line" }));
    }
    if (s.dots || pts.length === 1) {
      for (const p of pts) {
        const dot = el("circle", { cx: sx(p[0]).toFixed(1), cy: sy(p[1]).toFixed(1), r: 3.5, class: "dot" });
        dot.append(el("title", {}, `${s.name}: ${fmt(p[1])} at ${fmt(p[0])}`));
        g.append(dot);
      }
    }
    svg.append(g);
    const key = el("g", { class: `legend series ${s.cls || `s${i}`}` });
    key.append(el("line", { x1: legendX, x2: legendX + 18, y1: 12, y2: 12, class: "line" }));
    key.append(el("text", { x: legendX + 22, y: 16 }, s.name));
    svg.append(key);
    legendX += 30 + s.name.length * 7;
  });
}
