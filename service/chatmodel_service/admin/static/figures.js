// Figures: sessions, runs, errors, tokens, cost and latency per version.

import { api, path } from "./api.js";
import { $, clearError, fill, formatCost, formatMs, formatNumber, h, showError, whileBusy } from "./dom.js";

// One request per version: the newest ones are enough to compare a release.
const MAX_VERSIONS = 50;

let loadedFor = null; // the chat model whose figures are shown

export function init(ctx) {
  $("figures-refresh").addEventListener("click", (event) =>
    whileBusy(event.currentTarget, () => load(ctx)),
  );
}

export function reset() {
  loadedFor = null;
  $("figures-table").tBodies[0].replaceChildren();
  clearError("figures-error");
}

export function render(ctx) {
  // Publishing changes the Deploy column; creating a version adds a row.
  if (loadedFor === ctx.name && ctx.section === "figures") load(ctx);
  else loadedFor = null;
}

export function show(ctx) {
  if (ctx.chatModel && loadedFor !== ctx.name) load(ctx);
}

async function load(ctx) {
  const name = ctx.name;
  const versions = [...ctx.versions].reverse().slice(0, MAX_VERSIONS);
  loadedFor = name;
  try {
    const stats = await Promise.all(
      versions.map((v) => api("GET", path`/v1/chat-models/${name}/versions/${v.number}/stats`)),
    );
    if (name !== ctx.name) return;
    clearError("figures-error");
    renderTable(ctx, stats);
  } catch (error) {
    loadedFor = null;
    showError("figures-error", error);
  }
}

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
