// A small line chart on <canvas>: several series, axes with round ticks, a legend.
"use strict";

TL.COLOURS = ["#1f5fa8", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#e67700", "#0b7285"];

TL.chart = function (canvas, series, options) {
  options = options || {};
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 480;
  const height = canvas.clientHeight || 240;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.font = "12px system-ui, sans-serif";
  const points = series.flatMap((s) => s.points);
  canvas.dataset.points = String(points.length);
  if (!points.length) {
    g.fillStyle = "#777";
    g.fillText(options.empty || "no data yet", 12, height / 2);
    return;
  }
  const pad = { left: 56, right: 12, top: 14 + 16 * Math.ceil(series.length / 3), bottom: 34 };
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const yTicks = TL.ticks(y0, y1, 5);
  const xTicks = TL.ticks(x0, x1, 6);
  [y0, y1] = [Math.min(y0, yTicks[0]), Math.max(y1, yTicks[yTicks.length - 1])];
  const px = (x) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const py = (y) => height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);

  g.strokeStyle = "#e3e3e3";
  g.fillStyle = "#555";
  g.lineWidth = 1;
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (const t of yTicks) {
    g.beginPath(); g.moveTo(pad.left, py(t)); g.lineTo(width - pad.right, py(t)); g.stroke();
    g.fillText(TL.tickLabel(t), pad.left - 6, py(t));
  }
  g.textAlign = "center";
  g.textBaseline = "top";
  for (const t of xTicks) {
    if (t < x0 || t > x1) continue;
    g.fillText(TL.tickLabel(t), px(t), height - pad.bottom + 6);
  }
  g.strokeStyle = "#999";
  g.beginPath();
  g.moveTo(pad.left, pad.top); g.lineTo(pad.left, height - pad.bottom);
  g.lineTo(width - pad.right, height - pad.bottom);
  g.stroke();
  if (options.xLabel) g.fillText(options.xLabel, (pad.left + width - pad.right) / 2, height - 16);

  series.forEach((s, i) => {
    const colour = s.color || TL.COLOURS[i % TL.COLOURS.length];
    g.strokeStyle = colour;
    g.fillStyle = colour;
    g.lineWidth = 2;
    g.setLineDash(s.dashed ? [6, 4] : []);
    g.beginPath();
    s.points.forEach((p, j) => (j ? g.lineTo(px(p[0]), py(p[1])) : g.moveTo(px(p[0]), py(p[1]))));
    g.stroke();
    g.setLineDash([]);
    if (s.points.length < 40) {
      for (const p of s.points) {
        g.beginPath(); g.arc(px(p[0]), py(p[1]), 2.5, 0, 2 * Math.PI); g.fill();
      }
    }
    const column = i % 3;
    const row = Math.floor(i / 3);
    const lx = pad.left + column * ((width - pad.left) / 3);
    const ly = 4 + row * 16;
    g.fillRect(lx, ly + 5, 14, 3);
    g.fillStyle = "#333";
    g.textAlign = "left";
    g.fillText(s.name, lx + 18, ly);
  });
};

// Round numbers spanning [low, high]: 1, 2 or 5 times a power of ten apart.
TL.ticks = function (low, high, count) {
  const span = high - low;
  const raw = span / Math.max(count, 1);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => span / s <= count) || 10 * power;
  const ticks = [];
  for (let t = Math.floor(low / step) * step; t <= high + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  if (ticks.length && ticks[ticks.length - 1] < high) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
};

TL.tickLabel = function (t) {
  if (t === 0) return "0";
  const a = Math.abs(t);
  if (a >= 10000 || a < 0.001) return t.toExponential(1);
  return String(Number(t.toPrecision(4)));
};
