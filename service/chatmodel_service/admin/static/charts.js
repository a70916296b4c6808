// Charts as inline SVG built with DOM calls: a line chart of one figure per day for
// several series, and a tiny bar sparkline. Colours come from figures.css through
// `series-N` classes (currentColor), so light and dark themes both work and the page
// needs no inline style.

const SVG_NS = "http://www.w3.org/2000/svg";
export const SERIES_CLASSES = 8; // series-0 .. series-7 in figures.css

let chartCount = 0; // makes the <title>/<desc> ids unique on the page

/** s("circle", {cx: 1}, child): an SVG element, like h() in dom.js. */
export function s(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) {
      element.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** The colour class of version `number`: the same version keeps its colour everywhere. */
export function seriesClass(number) {
  return `series-${(Number(number) - 1) % SERIES_CLASSES}`;
}

/** The axis for values up to `max`: about four round steps (1, 2, 2.5 or 5 times a power
 * of ten; whole numbers when `integer`), and the top, a whole number of steps. */
function axisScale(max, integer) {
  if (!(max > 0)) return { step: integer ? 1 : 0.25, top: 1 };
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  let step = [1, 2, 2.5, 5, 10].find((m) => m * power >= rough) * power;
  if (integer) step = Math.max(1, step === 2.5 ? 5 : Math.round(step));
  return { step, top: Math.ceil(max / step - 1e-9) * step };
}

const dayLabel = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

function shortDay(day) {
  return dayLabel.format(new Date(`${day}T00:00:00Z`));
}

/**
 * A line chart, one line per series over `days` (YYYY-MM-DD, oldest first).
 *
 * series: [{version, label, values: Map(day -> number|null)}]. A day missing from
 * `values` is drawn as 0 when `missingIsZero` (runs, tokens, cost: nothing happened),
 * else as a gap (error rate, latency: no runs, no figure); a null value is a gap. Every
 * value the API gave is a point carrying data-version, data-day, data-metric and
 * data-value, with a tooltip.
 */
export function lineChart({ title, description, metric, days, series, format, missingIsZero, integer }) {
  const width = 720;
  const height = 260;
  const margin = { top: 14, right: 18, bottom: 30, left: 70 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const given = series.flatMap((line) => [...line.values.values()].filter((v) => v !== null));
  const { step, top } = axisScale(Math.max(...given, 0), integer);
  const x = (index) =>
    margin.left + (days.length > 1 ? (index / (days.length - 1)) * plotWidth : plotWidth / 2);
  const y = (value) => margin.top + plotHeight - (value / top) * plotHeight;

  chartCount += 1;
  const titleId = `chart-title-${chartCount}`;
  const descId = `chart-desc-${chartCount}`;
  const steps = Math.round(top / step);
  const grid = Array.from({ length: steps + 1 }, (_, index) => {
    const value = index * step;
    return s(
      "g",
      { class: "gridline" },
      s("line", { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value) }),
      s("text", { x: margin.left - 8, y: y(value), "text-anchor": "end", "dominant-baseline": "middle" }, format(value)),
    );
  });
  const every = Math.max(1, Math.ceil(days.length / 8));
  // Counted back from the last day, so today always has a label and none overlap.
  const ticks = days.map((day, index) =>
    (days.length - 1 - index) % every === 0
      ? s("text", { class: "tick", x: x(index), y: height - 8, "text-anchor": "middle" }, shortDay(day))
      : null,
  );
  const lines = series.map((line) => {
    const value = (day) => (line.values.has(day) ? line.values.get(day) : missingIsZero ? 0 : null);
    let d = "";
    let drawing = false;
    days.forEach((day, index) => {
      const v = value(day);
      if (v === null) {
        drawing = false;
        return;
      }
      d += `${drawing ? "L" : "M"}${x(index).toFixed(1)},${y(v).toFixed(1)}`;
      drawing = true;
    });
    const points = days
      .map((day, index) => [day, index])
      .filter(([day]) => line.values.has(day) && line.values.get(day) !== null)
      .map(([day, index]) => {
        const v = line.values.get(day);
        return s(
          "circle",
          {
            class: "point",
            cx: x(index).toFixed(1),
            cy: y(v).toFixed(1),
            r: 3.5,
            fill: "currentColor",
            "data-version": line.version,
            "data-day": day,
            "data-metric": metric,
            "data-value": v,
          },
          s("title", {}, `${line.label} · ${day}: ${format(v)}`),
        );
      });
    return s(
      "g",
      { class: `series ${seriesClass(line.version)}`, "data-version": line.version },
      d ? s("path", { d, fill: "none", stroke: "currentColor", "stroke-width": 2, "stroke-linejoin": "round" }) : null,
      points,
    );
  });
  return s(
    "svg",
    {
      class: "line-chart",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-labelledby": `${titleId} ${descId}`,
      "data-metric": metric,
      "data-from": days[0],
      "data-to": days.at(-1),
      preserveAspectRatio: "xMidYMid meet",
    },
    s("title", { id: titleId }, title),
    s("desc", { id: descId }, description),
    s("g", { class: "axis" }, grid, ticks),
    lines,
  );
}

/** A row of tiny bars, one per value (e.g. runs per day); the label is its title. */
export function sparkline(values, label) {
  const width = 4 * values.length + 2 * (values.length - 1);
  const height = 18;
  const top = Math.max(...values, 1);
  const bars = values.map((value, index) => {
    const barHeight = value > 0 ? Math.max(2, (value / top) * height) : 1;
    return s("rect", {
      x: index * 6,
      y: height - barHeight,
      width: 4,
      height: barHeight,
      fill: "currentColor",
      class: value > 0 ? "bar" : "bar none",
      "data-value": value,
    });
  });
  return s(
    "svg",
    { class: "sparkline", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label },
    s("title", {}, label),
    bars,
  );
}

/** The last `count` UTC days as YYYY-MM-DD, oldest first, today last. */
export function lastUtcDays(count, now = new Date()) {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: count }, (_, index) =>
    new Date(today - (count - 1 - index) * 86_400_000).toISOString().slice(0, 10),
  );
}
