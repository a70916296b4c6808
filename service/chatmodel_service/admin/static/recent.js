// Small figures in the Versions table: each version's runs per UTC day over the last 7
// days as tiny bars, with its runs and error rate, from one GET /v1/usage grouped by
// version and day. versions.js puts cell(number) in each row, then calls load(ctx).

import { api } from "./api.js";
import { lastUtcDays, seriesClass, sparkline } from "./charts.js";
import { fill, h } from "./dom.js";

const DAYS = 7;

let loaded = null; // {chatModel, days, report}: one request per refresh of the chat model

/** The placeholder load() fills for version `number`. */
export function cell(number) {
  return h("span", { class: "recent-figures", "data-recent-version": number },
    h("span", { class: "muted" }, "…"));
}

/** Fill every placeholder, asking the API once per chat model refresh (ctx.chatModel is
 * a new object after each one), not on every redraw of the table. */
export async function load(ctx) {
  const chatModel = ctx.chatModel;
  if (loaded?.chatModel !== chatModel) {
    const days = lastUtcDays(DAYS);
    const report = api("GET", "/v1/usage", {
      query: { chat_model: ctx.name, group_by: "version,day", from: days[0], to: days.at(-1) },
    }).catch(() => null); // a secondary figure: the table stays usable without it
    loaded = { chatModel, days, report };
  }
  const { days, report } = loaded;
  const body = await report;
  if (ctx.chatModel !== chatModel) return;
  for (const element of document.querySelectorAll("[data-recent-version]")) {
    fillCell(element, Number(element.dataset.recentVersion), days, body);
  }
}

function fillCell(element, number, days, body) {
  if (!body) {
    fill(element, h("span", { class: "muted" }, "—"));
    return;
  }
  const rows = body.data.filter((row) => row.version === number);
  const perDay = days.map((day) => rows.find((row) => row.day === day)?.runs ?? 0);
  const runs = rows.reduce((sum, row) => sum + row.runs, 0);
  const errors = rows.reduce((sum, row) => sum + row.errors, 0);
  element.dataset.runs = String(runs);
  element.dataset.errors = String(errors);
  element.classList.add(seriesClass(number));
  const rate = runs ? `${Number(((errors / runs) * 100).toFixed(1))}%` : null;
  const label = runs
    ? `v${number}, last ${DAYS} days: ${runs} runs, ${rate} failed`
    : `v${number}: no runs in the last ${DAYS} days`;
  fill(
    element,
    sparkline(perDay, label),
    h(
      "span",
      { class: "recent-text" },
      runs
        ? [
            `${runs.toLocaleString()} ${runs === 1 ? "run" : "runs"} · `,
            h("span", { class: errors ? "bad" : null }, `${rate} errors`),
          ]
        : h("span", { class: "muted" }, "no runs"),
    ),
  );
}
