// Publish: one version, an A/B split, or a rollback, each confirmed (now → after) first.
// Every change sends expected_release = the release this page shows, so a page that is
// out of date gets a 409 instead of overwriting someone else's release. The review says
// what a change means for the template variables new sessions must send, as the server
// does: a split of versions declaring different variables cannot be confirmed (the server
// refuses it with 422 variables_mismatch), and neither can a change that changes nothing.

import { api, path } from "./api.js";
import {
  $,
  clearError,
  fill,
  fillVersionSelect,
  h,
  showError,
  showStatus,
  timeElement,
  weightBadges,
  weightsText,
  whileBusy,
} from "./dom.js";

const BY_KEY = "chatmodel-admin-by";
const LETTERS = "ABCDEFGHIJ";

let splitRows = null; // [{version: "2", weight: "50"}], null until first drawn for a chat model
let publishChosen = false;

export function init(ctx) {
  const by = $("publish-by");
  by.value = window.localStorage.getItem(BY_KEY) ?? "";
  by.addEventListener("change", () => window.localStorage.setItem(BY_KEY, by.value.trim()));

  $("publish-version").addEventListener("change", () => {
    publishChosen = true;
  });
  $("publish-form").addEventListener("submit", (event) => {
    event.preventDefault();
    whileBusy(event.submitter ?? event.currentTarget, () => publishOne(ctx));
  });
  $("split-form").addEventListener("submit", (event) => {
    event.preventDefault();
    whileBusy(event.submitter ?? event.currentTarget, () => publishSplit(ctx));
  });
  $("split-add").addEventListener("click", () => {
    const used = new Set(splitRows.map((row) => row.version));
    const next = [...ctx.versions].reverse().find((v) => !used.has(String(v.number)));
    splitRows.push({ version: String(next?.number ?? ctx.latestVersion.number), weight: "" });
    renderSplit(ctx);
  });
  $("rollback-form").addEventListener("submit", (event) => {
    event.preventDefault();
    whileBusy(event.submitter ?? event.currentTarget, () => rollBack(ctx));
  });
  for (const button of ["confirm-ok", "confirm-cancel"]) {
    $(button).addEventListener("click", () =>
      $("confirm-dialog").close(button === "confirm-ok" ? "ok" : "cancel"),
    );
  }
}

export function reset() {
  splitRows = null;
  publishChosen = false;
  fill($("publish-version"));
  fill($("publish-status"));
  clearError("publish-error");
}

export function render(ctx) {
  renderCurrent(ctx);
  const latest = ctx.latestVersion?.number;
  fillVersionSelect($("publish-version"), ctx.versions, latest, publishChosen);
  const problem = ctx.versions.length
    ? null
    : "There is no version to publish yet: create one on the Versions tab.";
  $("publish-problem").textContent = problem ?? "";
  $("publish-problem").hidden = !problem;
  $("publish-submit").disabled = Boolean(problem);
  if (splitRows === null || splitRows.length < 2) splitRows = defaultSplit(ctx);
  renderSplit(ctx);
  renderRollback(ctx);
}

function renderCurrent(ctx) {
  const release = ctx.currentRelease;
  fill($("current-release"),
    release
      ? h(
          "p",
          {},
          h("span", { class: "current-label" }, "Live now"),
          h("strong", {}, `Release #${release.release}`),
          h("span", { class: `kind kind-${release.kind}` }, release.kind),
          weightBadges(release.versions),
          h(
            "span",
            { class: "muted" },
            release.published_by ? `by ${release.published_by}, ` : "",
            timeElement(release.created_at),
          ),
        )
      : h(
          "p",
          { class: "nothing-live" },
          ctx.versions.length
            ? "Nothing is published yet: sessions on “deploy” cannot start until a version " +
                "is published."
            : "Nothing is published yet, and this chat model has no versions: create the " +
                "first one on the Versions tab, then publish it here.",
        ),
  );
}

function defaultSplit(ctx) {
  const current = ctx.currentRelease;
  if (current && current.kind === "split") {
    return Object.entries(current.versions).map(([version, weight]) => ({
      version,
      weight: String(weight),
    }));
  }
  const newest = [...ctx.versions].reverse().slice(0, 2).reverse();
  if (newest.length < 2) return [];
  return newest.map((v) => ({ version: String(v.number), weight: "50" }));
}

function renderSplit(ctx) {
  const rows = splitRows.map((row, index) => {
    const letter = LETTERS[index] ?? String(index + 1);
    const select = h("select", { id: `split-version-${index}` });
    fillVersionSelect(select, ctx.versions, row.version, false);
    select.addEventListener("change", () => {
      row.version = select.value;
      updateTotal(ctx);
    });
    const weight = h("input", {
      id: `split-weight-${index}`,
      type: "number",
      min: 1,
      max: 100,
      step: 1,
      value: row.weight,
      inputmode: "numeric",
    });
    weight.addEventListener("input", () => {
      row.weight = weight.value;
      updateTotal(ctx);
    });
    return h(
      "div",
      { class: "split-row" },
      h("div", {}, h("label", { for: select.id }, `Version ${letter}`), select),
      h("div", {}, h("label", { for: weight.id }, `Weight ${letter} (%)`), weight),
      h(
        "button",
        {
          type: "button",
          class: "link-button remove",
          "aria-label": `Remove version ${letter}`,
          disabled: splitRows.length <= 2,
          onclick: () => {
            splitRows.splice(index, 1);
            renderSplit(ctx);
          },
        },
        "Remove",
      ),
    );
  });
  fill($("split-rows"), ...rows);
  $("split-add").disabled = ctx.versions.length < 2 || splitRows.length >= ctx.versions.length;
  updateTotal(ctx);
}

/** The problem with the split as typed, or null if it can be reviewed. */
function splitProblem(ctx) {
  if (ctx.versions.length < 2) return "A split needs at least two versions.";
  const numbers = splitRows.map((row) => row.version);
  const repeated = numbers.find((n, i) => numbers.indexOf(n) !== i);
  if (repeated) return `v${repeated} is in the split twice.`;
  const weights = splitRows.map((row) => Number(row.weight));
  if (weights.some((w) => !Number.isInteger(w) || w < 1 || w > 100)) {
    return "Each weight is a whole number from 1 to 100.";
  }
  const total = weights.reduce((a, b) => a + b, 0);
  if (total !== 100) return `The weights add up to ${total}%; they must add up to 100%.`;
  return null;
}

function updateTotal(ctx) {
  const total = splitRows.reduce((sum, row) => sum + (Number(row.weight) || 0), 0);
  const problem = splitProblem(ctx);
  const line = $("split-total");
  line.className = `split-total ${problem ? "bad" : "good"}`;
  line.textContent = problem ?? `Total ${total}% ✓`;
  $("split-submit").disabled = Boolean(problem);
}

function renderRollback(ctx) {
  const [current, previous] = ctx.releases;
  const target = $("rollback-target");
  const button = $("rollback-submit");
  button.className = "danger";
  button.textContent = previous ? `Review rollback to #${previous.release}` : "Review rollback";
  if (previous) {
    fill(target,
      `Republishes release #${previous.release}: `,
      weightBadges(previous.versions),
      h("br"),
      `Live now: ${weightsText(current.versions)}.`,
    );
  } else {
    target.textContent = current
      ? "Nothing to roll back to: there is only one release."
      : "Nothing to roll back to: nothing is published.";
  }
  button.disabled = !previous;
}

// ---- template variables ------------------------------------------------------------

/** The variables a version declares, sorted (none for a plain prompt). */
function declared(version) {
  return [...(version?.variables ?? [])].sort();
}

function braced(names) {
  return `{${names.join(", ")}}`;
}

function declares(group) {
  const verb = group.numbers.length > 1 ? "declare" : "declares";
  return group.names.length ? `${verb} ${braced(group.names)}` : `${verb} none`;
}

function versionsText(numbers) {
  const tags = numbers.map((n) => `v${n}`);
  return tags.length > 1 ? `${tags.slice(0, -1).join(", ")} and ${tags.at(-1)}` : tags[0];
}

/** The versions numbered `numbers` grouped by the variables they declare:
 * [{key, names, numbers}], in version order. */
function variableGroups(ctx, numbers) {
  const groups = new Map();
  for (const number of [...numbers].map(Number).sort((a, b) => a - b)) {
    const names = declared(ctx.versions.find((v) => v.number === number));
    const key = names.join(",");
    if (!groups.has(key)) groups.set(key, { key, names, numbers: [] });
    groups.get(key).numbers.push(number);
  }
  return [...groups.values()];
}

/** "sessions created with variables {plan} would fail on v2, which declares none" */
function wouldFail(names, others) {
  const who = names.length
    ? `sessions created with variables ${braced(names)}`
    : "sessions created without variables";
  const where = others
    .map((group) => `${versionsText(group.numbers)}, which ${declares(group)}`)
    .join(" and on ");
  return `${who} would fail on ${where}`;
}

/** Why a split of these versions breaks session creation, or null if they all declare
 * the same variables. */
function splitMismatch(ctx, numbers) {
  const groups = variableGroups(ctx, numbers);
  if (groups.length < 2) return null;
  const each = groups.map((g) => `${versionsText(g.numbers)} ${declares(g)}`).join(", ");
  const fails = groups.map((g) => wouldFail(g.names, groups.filter((o) => o !== g)));
  return (
    `These versions declare different template variables (${each}), and a new session ` +
    `must send exactly the variables of the version it is given: ${fails.join("; ")}. ` +
    "The server refuses this split: split versions that declare the same variables."
  );
}

/** What clients creating sessions the way the live release wants would meet after the
 * change, or null if their variables still fit. */
function variablesChange(ctx, current, after) {
  if (!current) return null;
  const before = variableGroups(ctx, Object.keys(current.versions));
  const next = variableGroups(ctx, Object.keys(after));
  const fails = before
    .filter((g) => !next.some((n) => n.key === g.key))
    .map((g) => wouldFail(g.names, next));
  if (!fails.length) return null;
  return (
    `New sessions will need other template variables: ${fails.join("; ")}. ` +
    "Sessions created already keep their versions."
  );
}

// ---- confirm and apply -------------------------------------------------------------

/** Show what changes (now → after) and what it means; resolves true if the user
 * confirms. `refusal` (or a change that changes nothing) leaves only Cancel. */
function confirmChange({
  title,
  after,
  note,
  okLabel,
  current,
  refusal = null,
  warning = null,
  danger = false,
}) {
  const dialog = $("confirm-dialog");
  $("confirm-title").textContent = title;
  fill($("confirm-from"), weightBadges(current?.versions ?? {}));
  fill($("confirm-to"), weightBadges(after));
  const same = Boolean(current) && weightsText(current.versions) === weightsText(after);
  const blocked =
    refusal ?? (same ? "This is what is live already: confirming would change nothing." : null);
  fill($("confirm-note"),
    note ? h("span", { class: "confirm-line" }, "Note: ", h("em", {}, note)) : null,
    blocked ? h("span", { class: "confirm-line refusal", role: "alert" }, blocked) : null,
    !blocked && warning ? h("span", { class: "confirm-line warning" }, warning) : null,
  );
  const ok = $("confirm-ok");
  ok.textContent = okLabel;
  ok.className = danger ? "danger" : "primary";
  ok.disabled = Boolean(blocked);
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    (blocked ? $("confirm-cancel") : ok).focus();
  });
}

function changeBody(ctx, extra) {
  const body = { ...extra };
  const current = ctx.currentRelease;
  if (current) body.expected_release = current.id;
  const by = $("publish-by").value.trim();
  if (by) body.by = by;
  return body;
}

async function apply(ctx, endpoint, body, noteInput) {
  clearError("publish-error");
  fill($("publish-status"));
  try {
    const release = await api("POST", path`/v1/chat-models/${ctx.name}/${endpoint}`, { body });
    $(noteInput).value = "";
    showStatus(
      "publish-status",
      `Release #${release.release} (${release.kind}) is live: ${weightsText(release.versions)}.`,
    );
    for (const warning of release.warnings ?? []) {
      $("publish-status").append(h("div", { class: "warning-box" }, warning.detail));
    }
  } catch (error) {
    const stale = error.code === "stale_release";
    showError(
      "publish-error",
      error,
      stale
        ? "Someone changed the releases after this page loaded them. The page now shows the " +
            "current release: review it and try again."
        : null,
    );
  }
  await ctx.refresh();
}

async function publishOne(ctx) {
  const version = Number($("publish-version").value);
  if (!version) return;
  const note = $("publish-note").value.trim();
  const after = { [version]: 100 };
  const confirmed = await confirmChange({
    title: `Publish version ${version}?`,
    current: ctx.currentRelease,
    after,
    note,
    okLabel: "Confirm publish",
    warning: variablesChange(ctx, ctx.currentRelease, after),
  });
  if (!confirmed) return;
  await apply(ctx, "publish", changeBody(ctx, { version, note }), "publish-note");
}

async function publishSplit(ctx) {
  if (splitProblem(ctx)) return;
  const weights = Object.fromEntries(splitRows.map((row) => [row.version, Number(row.weight)]));
  const note = $("split-note").value.trim();
  const confirmed = await confirmChange({
    title: `Split traffic: ${weightsText(weights)}?`,
    current: ctx.currentRelease,
    after: weights,
    note,
    okLabel: "Confirm split",
    refusal: splitMismatch(ctx, Object.keys(weights)),
    warning: variablesChange(ctx, ctx.currentRelease, weights),
  });
  if (!confirmed) return;
  await apply(ctx, "publish", changeBody(ctx, { weights, note }), "split-note");
}

async function rollBack(ctx) {
  const [current, previous] = ctx.releases;
  if (!previous) return;
  const note = $("rollback-note").value.trim();
  const confirmed = await confirmChange({
    title: `Roll back to release #${previous.release}?`,
    current,
    after: previous.versions,
    note,
    okLabel: `Roll back to release #${previous.release}`,
    warning: variablesChange(ctx, current, previous.versions),
    danger: true,
  });
  if (!confirmed) return;
  const body = changeBody(ctx, note ? { note } : {});
  await apply(ctx, "rollback", body, "rollback-note");
}
