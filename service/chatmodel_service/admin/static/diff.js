// Diff: two versions side by side (or unified), and the table of changed settings.

import { api, path } from "./api.js";
import { $, clearError, fill, fillVersionSelect, h, showError, whileBusy } from "./dom.js";

let lastDiff = null; // the last answer, redrawn when the layout changes
let loadedFor = null; // "from-to" of lastDiff, for the current chat model
let chosen = false; // the user picked versions: keep them when versions are added

export function init(ctx) {
  $("diff-form").addEventListener("submit", (event) => {
    event.preventDefault();
    whileBusy(event.submitter ?? event.currentTarget, () => loadDiff(ctx));
  });
  for (const id of ["diff-from", "diff-to"]) {
    $(id).addEventListener("change", () => {
      chosen = true;
      loadDiff(ctx);
    });
  }
  for (const radio of document.querySelectorAll("input[name=diff-layout]")) {
    radio.addEventListener("change", () => lastDiff && renderDiff(lastDiff));
  }
}

export function reset() {
  lastDiff = null;
  loadedFor = null;
  chosen = false;
  fill($("diff-from"));
  fill($("diff-to"));
  fill($("diff-result"));
  clearError("diff-error");
}

export function render(ctx) {
  const latest = ctx.latestVersion?.number;
  fillVersionSelect($("diff-from"), ctx.versions, latest > 1 ? latest - 1 : latest, chosen);
  fillVersionSelect($("diff-to"), ctx.versions, latest, chosen);
  $("diff-form").querySelector("button[type=submit]").disabled = ctx.versions.length < 2;
  const nothing = nothingToCompare(ctx);
  if (nothing) fill($("diff-result"), h("p", { class: "empty" }, nothing));
  else if (!lastDiff) fill($("diff-result"));
}

/** Why there is no diff to show (fewer than two versions), or null. */
function nothingToCompare(ctx) {
  if (ctx.versions.length === 0) {
    return "There are no versions yet: create two on the Versions tab to compare them.";
  }
  if (ctx.versions.length === 1) {
    return "There is only one version: create another to compare.";
  }
  return null;
}

export function show(ctx, request) {
  if (!ctx.chatModel) return;
  if (request) {
    $("diff-from").value = String(request.from);
    $("diff-to").value = String(request.to);
    chosen = true;
  }
  const nothing = nothingToCompare(ctx);
  if (nothing) {
    fill($("diff-result"), h("p", { class: "empty" }, nothing));
    return;
  }
  if (loadedFor !== `${$("diff-from").value}-${$("diff-to").value}`) loadDiff(ctx);
}

async function loadDiff(ctx) {
  const from = $("diff-from").value;
  const to = $("diff-to").value;
  if (!from || !to) return;
  try {
    const answer = await api("GET", path`/v1/chat-models/${ctx.name}/diff`, {
      query: { from, to },
    });
    clearError("diff-error");
    lastDiff = answer;
    loadedFor = `${from}-${to}`;
    renderDiff(answer);
  } catch (error) {
    showError("diff-error", error);
  }
}

function layout() {
  return document.querySelector("input[name=diff-layout]:checked")?.value ?? "split";
}

function renderDiff(answer) {
  const lines = answer.system_prompt_diff;
  fill($("diff-result"),
    h("h2", { class: "section-title" }, `System prompt: v${answer.from} → v${answer.to}`),
    lines.length
      ? layout() === "split"
        ? splitTable(lines, answer)
        : unifiedTable(lines)
      : h("p", { class: "empty" }, "The system prompt is the same in both versions."),
    h("h2", { class: "section-title" }, "Other settings"),
    answer.changes.length
      ? changesTable(answer.changes, answer)
      : h("p", { class: "empty" }, "No other setting differs."),
  );
}

/** The hunks of a unified diff: [{header, oldStart, newStart, lines: [" x", "-y", "+z"]}]. */
function parseHunks(lines) {
  const hunks = [];
  for (const line of lines) {
    if (line.startsWith("---") || line.startsWith("+++")) continue;
    const header = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (header) {
      hunks.push({ header: line, oldStart: Number(header[1]), newStart: Number(header[2]), lines: [] });
    } else if (hunks.length) {
      hunks.at(-1).lines.push(line);
    }
  }
  return hunks;
}

const KIND = { "+": "add", "-": "del", " ": "same" };

function unifiedTable(lines) {
  const rows = [];
  for (const hunk of parseHunks(lines)) {
    rows.push(h("tr", { class: "hunk" }, h("td", { colspan: 4 }, hunk.header)));
    let oldNo = hunk.oldStart;
    let newNo = hunk.newStart;
    for (const line of hunk.lines) {
      const sign = line[0] ?? " ";
      const kind = KIND[sign] ?? "same";
      rows.push(
        h(
          "tr",
          { class: kind },
          h("td", { class: "ln" }, kind === "add" ? "" : oldNo++),
          h("td", { class: "ln" }, kind === "del" ? "" : newNo++),
          h("td", { class: "sign", "aria-hidden": "true" }, sign === " " ? "" : sign),
          h("td", { class: "text" }, line.slice(1)),
        ),
      );
    }
  }
  return h(
    "table",
    { class: "diff unified", "aria-label": "Unified diff of the system prompt" },
    h("colgroup", {}, h("col", { class: "ln-col" }), h("col", { class: "ln-col" }), h("col", { class: "sign-col" }), h("col")),
    h("tbody", {}, rows),
  );
}

function splitTable(lines, answer) {
  const rows = [];
  for (const hunk of parseHunks(lines)) {
    rows.push(h("tr", { class: "hunk" }, h("td", { colspan: 4 }, hunk.header)));
    let oldNo = hunk.oldStart;
    let newNo = hunk.newStart;
    let removed = [];
    let added = [];
    const flush = () => {
      for (let i = 0; i < Math.max(removed.length, added.length); i++) {
        const left = removed[i];
        const right = added[i];
        rows.push(
          h(
            "tr",
            {},
            h("td", { class: `ln ${left === undefined ? "blank" : "del"}` }, left === undefined ? "" : oldNo++),
            h("td", { class: `text ${left === undefined ? "blank" : "del"}` }, left ?? ""),
            h("td", { class: `ln ${right === undefined ? "blank" : "add"}` }, right === undefined ? "" : newNo++),
            h("td", { class: `text ${right === undefined ? "blank" : "add"}` }, right ?? ""),
          ),
        );
      }
      removed = [];
      added = [];
    };
    for (const line of hunk.lines) {
      if (line.startsWith("-")) removed.push(line.slice(1));
      else if (line.startsWith("+")) added.push(line.slice(1));
      else {
        flush();
        rows.push(
          h(
            "tr",
            { class: "same" },
            h("td", { class: "ln" }, oldNo++),
            h("td", { class: "text" }, line.slice(1)),
            h("td", { class: "ln" }, newNo++),
            h("td", { class: "text" }, line.slice(1)),
          ),
        );
      }
    }
    flush();
  }
  return h(
    "table",
    { class: "diff split", "aria-label": "Side-by-side diff of the system prompt" },
    h("colgroup", {}, h("col", { class: "ln-col" }), h("col"), h("col", { class: "ln-col" }), h("col")),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { colspan: 2, scope: "col" }, `v${answer.from}`),
        h("th", { colspan: 2, scope: "col" }, `v${answer.to}`),
      ),
    ),
    h("tbody", {}, rows),
  );
}

function settingValue(value) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "not set");
  if (typeof value === "string") return h("code", {}, value === "" ? '""' : value);
  const text = JSON.stringify(value, null, 2);
  return text.includes("\n") ? h("pre", { class: "code" }, text) : h("code", {}, text);
}

function changesTable(changes, answer) {
  return h(
    "table",
    { class: "data changes", "aria-label": "Changed settings" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "Setting"),
        h("th", { scope: "col" }, `v${answer.from}`),
        h("th", { scope: "col" }, `v${answer.to}`),
      ),
    ),
    h(
      "tbody",
      {},
      changes.map((change) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, h("code", {}, change.field)),
          h("td", { class: "old" }, settingValue(change.from)),
          h("td", { class: "new" }, settingValue(change.to)),
        ),
      ),
    ),
  );
}
