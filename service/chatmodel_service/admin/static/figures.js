// Figures: a chart of runs, error rate, p95 latency, tokens or cost per UTC day for each
// version (one GET /v1/usage?group_by=version,day), the sides of the current split side
// by side with their difference (GET /v1/usage since the split), and the all-time table
// per version (…/versions/{n}/stats). A chat model without runs gets an explanation.

import { api, path } from "./api.js";
import { lastUtcDays, lineChart, seriesClass } from "./charts.js";
import {
  $,
  clearError,
  fill,
  formatCost,
  formatMs,
  formatNumber,
  h,
  showError,
  timeElement,
  weightPairs,
  whileBusy,
} from "./dom.js";

// One stats request per version: the newest ones are enough to compare a release.
const MAX_VERSIONS = 50;
const MAX_SPAN_DAYS = 365; // /v1/usage answers windows of at most 366 days

export function formatPercent(value) {
  if (value === null || value === undefined) return "—";
  return `${Number((value * 100).toFixed(1))}%`;
}

function formatPerRun(value) {
  return value === null || value === undefined ? "—" : Number(value.toFixed(1)).toLocaleString();
}

// The figures a chart can show, by the usage row field they read.
const METRICS = {
  runs: { label: "Runs", format: formatNumber, missingIsZero: true, integer: true },
  error_rate: { label: "Error rate", format: formatPercent, missingIsZero: false },
  latency_p95_ms: { label: "p95 latency", format: formatMs, missingIsZero: false, integer: true },
  total_tokens: { label: "Tokens", format: formatNumber, missingIsZero: true, integer: true },
  cost: { label: "Cost", format: formatCost, missingIsZero: true },
};

// What the split comparison shows per side. Tokens and cost per run, so that a side with
// less traffic is not simply "cheaper".
const SPLIT_METRICS = [
  { key: "runs", label: "Runs", value: (f) => f.runs, format: formatNumber },
  { key: "error_rate", label: "Error rate", value: (f) => f.error_rate, format: formatPercent },
  { key: "latency_p95_ms", label: "p95 latency", value: (f) => f.latency_p95_ms, format: formatMs },
  {
    key: "tokens_per_run",
    label: "Tokens per run",
    value: (f) => (f.runs ? f.total_tokens / f.runs : null),
    format: formatPerRun,
  },
  {
    key: "cost_per_run",
    label: "Cost per run",
    value: (f) => (f.runs && f.cost !== null ? f.cost / f.runs : null),
    format: formatCost,
  },
];

let loadedFor = null; // the chat model whose figures are shown
let shown = null; // {ctx, days, daily}: what the chart draws when the figure changes

export function init(ctx) {
  $("figures-refresh").addEventListener("click", (event) =>
    whileBusy(event.currentTarget, () => load(ctx)),
  );
  $("figures-metric").addEventListener("change", () => renderChart());
  $("figures-days").addEventListener("change", () => {
    if (ctx.chatModel) load(ctx);
  });
}

export function reset() {
  loadedFor = null;
  shown = null;
  $("figures-table").tBodies[0].replaceChildren();
  fill($("figures-chart"));
  fill($("figures-legend"));
  fill($("figures-empty"));
  $("figures-empty").hidden = true;
  $("figures-content").hidden = false;
  $("figures-split").hidden = true;
  clearError("figures-error");
}

export function render(ctx) {
  // Publishing changes the Deploy column and the split; creating a version adds a row.
  if (loadedFor === ctx.name && ctx.section === "figures") load(ctx);
  else loadedFor = null;
}

export function show(ctx) {
  if (ctx.chatModel && loadedFor !== ctx.name) load(ctx);
}

/** The current release's sides when it is a split (two versions or more), else null. */
function splitOf(release) {
  const sides = weightPairs(release?.versions);
  return sides.length >= 2 ? { release, sides } : null;
}

function splitStart(release) {
  const earliest = Date.now() - MAX_SPAN_DAYS * 86_400_000;
  return new Date(Math.max(Date.parse(release.created_at), earliest)).toISOString();
}

async function load(ctx) {
  const name = ctx.name;
  const versions = [...ctx.versions].reverse().slice(0, MAX_VERSIONS);
  const days = lastUtcDays(Number($("figures-days").value));
  const split = splitOf(ctx.currentRelease);
  loadedFor = name;
  try {
    const [stats, daily, sides] = await Promise.all([
      Promise.all(
        versions.map((v) => api("GET", path`/v1/chat-models/${name}/versions/${v.number}/stats`)),
      ),
      api("GET", "/v1/usage", {
        query: { chat_model: name, group_by: "version,day", from: days[0], to: days.at(-1) },
      }),
      split
        ? api("GET", "/v1/usage", {
            query: { chat_model: name, group_by: "version", from: splitStart(split.release) },
          })
        : null,
    ]);
    if (name !== ctx.name) return;
    clearError("figures-error");
    const empty = stats.every((s) => s.runs === 0);
    $("figures-empty").hidden = !empty;
    $("figures-content").hidden = empty;
    if (empty) {
      renderEmpty(ctx);
      return;
    }
    shown = { ctx, days, daily };
    renderSplit(split, sides);
    renderChart();
    renderTable(ctx, stats);
  } catch (error) {
    loadedFor = null;
    showError("figures-error", error);
  }
}

function renderEmpty(ctx) {
  const published = weightPairs(ctx.chatModel.published_versions).length > 0;
  fill(
    $("figures-empty"),
    h("h2", {}, "No runs yet"),
    h(
      "p",
      {},
      `Once ${ctx.name} has runs, this tab charts its runs, error rate, p95 latency, tokens `,
      "and cost per day for each version, compares the two sides of an A/B split, and ",
      "totals every version.",
    ),
    h(
      "p",
      {},
      published ? "To get data, " : "To get data, publish a version (Publish tab), then ",
      "start a session with ",
      h("code", {}, "POST /v1/sessions"),
      " and run it with ",
      h("code", {}, "POST /v1/sessions/{id}/run"),
      ", or call ",
      h("code", {}, "POST /v1/chat/completions"),
      " with ",
      h("code", {}, `"model": "${ctx.name}"`),
      ". Every run counts, failed ones included.",
    ),
  );
}

// ---- the chart ---------------------------------------------------------------------

function renderChart() {
  if (!shown) return;
  const { ctx, days, daily } = shown;
  const metric = $("figures-metric").value;
  const { label, format, missingIsZero, integer } = METRICS[metric];
  const published = ctx.chatModel.published_versions;
  const numbers = [...new Set(daily.data.map((row) => row.version))].sort((a, b) => a - b);
  const series = numbers.map((number) => ({
    version: number,
    label: `v${number}`,
    values: new Map(
      daily.data.filter((row) => row.version === number).map((row) => [row.day, row[metric]]),
    ),
  }));
  const period = `${days[0]} to ${days.at(-1)} (UTC)`;
  $("figures-chart-heading").textContent = `${label} per day`;
  const priced = series.some((line) => [...line.values.values()].some((v) => v !== null));
  if (!series.length || !priced) {
    fill(
      $("figures-chart"),
      h(
        "p",
        { class: "empty" },
        !series.length
          ? `No runs from ${period}. The table below counts every run so far.`
          : `No run from ${period} has a price: LiteLLM knows no cost for these models.`,
      ),
    );
    fill($("figures-legend"));
    $("figures-numbers").hidden = true;
    return;
  }
  fill(
    $("figures-chart"),
    lineChart({
      title: `${label} per day, per version`,
      description:
        `${label} of ${ctx.name} per UTC day from ${period}, one line per version: ` +
        `${series.map((line) => line.label).join(", ")}. The numbers are in the table below.`,
      metric,
      days,
      series,
      format,
      missingIsZero,
      integer,
    }),
  );
  fill(
    $("figures-legend"),
    numbers.map((number) =>
      h(
        "li",
        { "data-version": number },
        h("span", { class: `swatch ${seriesClass(number)}`, "aria-hidden": "true" }),
        `v${number}`,
        published[number] ? h("span", { class: "badge live" }, `${published[number]}%`) : null,
      ),
    ),
  );
  renderNumbers(series, days, label, format);
}

/** The chart's numbers as a table (in a <details>): one row per day that had runs. */
function renderNumbers(series, days, label, format) {
  $("figures-numbers").hidden = false;
  $("figures-numbers-summary").textContent = `${label} per day, as numbers`;
  const table = $("figures-days-table");
  fill(table.tHead,
    h("tr", {}, h("th", { scope: "col" }, "Day (UTC)"),
      series.map((line) => h("th", { scope: "col" }, line.label))),
  );
  const rows = [...days]
    .reverse()
    .filter((day) => series.some((line) => line.values.has(day)))
    .map((day) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("time", { datetime: day }, day)),
        series.map((line) =>
          line.values.has(day)
            ? h("td", { "data-version": line.version, "data-day": day, "data-value": line.values.get(day) },
                format(line.values.get(day)))
            : h("td", { class: "muted" }, "—"),
        ),
      ),
    );
  table.tBodies[0].replaceChildren(...rows);
}

// ---- the split ---------------------------------------------------------------------

const NO_RUNS = {
  runs: 0,
  error_rate: null,
  latency_p95_ms: null,
  total_tokens: 0,
  cost: null,
};

function signed(value, format) {
  if (value === null) return "—";
  if (value === 0) return "±0";
  const text = format(Math.abs(value));
  return value > 0 ? `+${text}` : `−${text}`;
}

function formatPoints(value) {
  return `${Number((value * 100).toFixed(1))} pts`;
}

function renderSplit(split, report) {
  const box = $("figures-split");
  box.hidden = !split;
  if (!split) return;
  const { release, sides } = split;
  const figures = sides.map(([number]) => report.data.find((row) => row.version === number) ?? NO_RUNS);
  const [base] = sides;
  fill($("figures-split-since"),
    `Release #${release.release}, runs since it was made (`, timeElement(release.created_at), "). ",
    sides.length > 2
      ? `Each difference is against v${base[0]}.`
      : "The difference is the second side minus the first.",
  );
  const table = $("figures-split-table");
  fill(table.tHead,
    h(
      "tr",
      {},
      h("th", { scope: "col" }, "Figure"),
      sides.map(([number, weight]) =>
        h("th", { scope: "col", "data-version": number },
          h("span", { class: `swatch ${seriesClass(number)}`, "aria-hidden": "true" }),
          `v${number} · ${weight}%`),
      ),
      sides.slice(1).map(([number]) => h("th", { scope: "col" }, `v${number} − v${base[0]}`)),
    ),
  );
  const rows = SPLIT_METRICS.map((metric) => {
    const values = figures.map((f) => metric.value(f));
    const diffFormat = metric.key === "error_rate" ? formatPoints : metric.format;
    return h(
      "tr",
      { "data-metric": metric.key },
      h("th", { scope: "row" }, metric.label),
      values.map((value, index) =>
        h("td", { "data-version": sides[index][0], "data-value": value ?? "" }, metric.format(value)),
      ),
      values.slice(1).map((value, index) => {
        const difference = value === null || values[0] === null ? null : value - values[0];
        return h(
          "td",
          {
            class: "difference",
            "data-versions": `${sides[index + 1][0]}-${base[0]}`,
            "data-difference": difference ?? "",
          },
          signed(difference, diffFormat),
        );
      }),
    );
  });
  table.tBodies[0].replaceChildren(...rows);
}

// ---- all time per version ----------------------------------------------------------

function renderTable(ctx, stats) {
  const published = ctx.chatModel.published_versions;
  const rows = stats.map((s) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, `v${s.version}`),
      h("td", {}, published[s.version] ? h("span", { class: "badge live" }, `${published[s.version]}%`) : ""),
      h("td", {}, formatNumber(s.sessions)),
      h("td", {}, formatNumber(s.runs)),
      h("td", { class: s.errors ? "bad" : null }, formatNumber(s.errors)),
      h("td", {}, formatNumber(s.prompt_tokens)),
      h("td", {}, formatNumber(s.completion_tokens)),
      h("td", {}, formatNumber(s.total_tokens)),
      h("td", {}, formatCost(s.cost)),
      h("td", {}, formatMs(s.latency_ms.mean)),
      h("td", {}, formatMs(s.latency_ms.p95)),
    ),
  );
  $("figures-table").tBodies[0].replaceChildren(...rows);
}
