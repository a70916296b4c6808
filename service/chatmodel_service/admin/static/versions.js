// Versions: the list, one version's prompt and settings, and the "New version" form.

import { ApiError, api, path } from "./api.js";
import { $, clearError, fill, h, prettyJson, showError, showStatus, timeElement, whileBusy } from "./dom.js";
import * as playground from "./playground.js";
import * as recent from "./recent.js";

const SHOWN_PARAMS = ["temperature", "max_tokens", "top_p"];

// The form's inputs by the API field they fill (an error's `field` marks the input).
const FIELD_INPUTS = {
  system_prompt: "nv-system-prompt",
  model: "nv-model",
  api_base: "nv-api-base",
  "params.temperature": "nv-temperature",
  "params.max_tokens": "nv-max-tokens",
  "params.top_p": "nv-top-p",
  params: "nv-other-params",
  variables: "nv-variables",
  memo: "nv-memo",
  functions: "nv-functions",
  tools: "nv-tools",
};

let selected = null; // the version number shown in the detail card

export function init(ctx) {
  $("new-version-button").addEventListener("click", () => openForm(ctx, ctx.latestVersion));
  $("new-version-cancel").addEventListener("click", closeForm);
  $("new-version-try").addEventListener("click", () =>
    playground.openDraft(ctx, { read: formBody, markInvalid: markOnlyInvalid }),
  );
  $("new-version-form").addEventListener("submit", (event) => {
    event.preventDefault();
    whileBusy(event.submitter ?? event.currentTarget, () => createVersion(ctx));
  });
}

export function reset() {
  selected = null;
  playground.close();
  closeForm();
  fill($("versions-status"));
  $("version-detail").hidden = true;
  $("versions-table").tBodies[0].replaceChildren();
}

export function render(ctx) {
  const published = ctx.chatModel.published_versions;
  if (selected === null || !ctx.versions.some((v) => v.number === selected)) {
    selected = ctx.latestVersion?.number ?? null;
  }
  const rows = [...ctx.versions].reverse().map((version) => {
    const weight = published[version.number];
    const row = h(
      "tr",
      {
        class: version.number === selected ? "selected" : null,
        "aria-selected": String(version.number === selected),
      },
      h(
        "td",
        {},
        h(
          "button",
          { type: "button", class: "link-button version-number" },
          `v${version.number}`,
        ),
      ),
      h("td", {}, h("code", {}, version.model)),
      h("td", { class: "memo" }, version.memo || h("span", { class: "muted" }, "—")),
      h("td", { class: "nowrap" }, timeElement(version.created_at)),
      h("td", {}, weight ? h("span", { class: "badge live" }, `${weight}%`) : ""),
      h("td", {}, recent.cell(version.number)),
    );
    row.addEventListener("click", () => {
      selected = version.number;
      render(ctx);
      // On narrow screens the card is below the table: bring it into view.
      $("version-detail").scrollIntoView({ block: "nearest" });
    });
    return row;
  });
  $("versions-table").tBodies[0].replaceChildren(...rows);
  recent.load(ctx);
  $("versions-empty").hidden = ctx.versions.length > 0;
  renderDetail(ctx);
  playground.sync(ctx);
}

function renderDetail(ctx) {
  const card = $("version-detail");
  const version = ctx.versions.find((v) => v.number === selected);
  card.hidden = !version;
  if (!version) return;
  const weight = ctx.chatModel.published_versions[version.number];
  const params = Object.entries(version.params ?? {});
  const previous = ctx.versions.filter((v) => v.number < version.number).at(-1);
  fill(card,
    h(
      "header",
      { class: "detail-head" },
      h(
        "h2",
        {},
        `Version ${version.number}`,
        weight ? h("span", { class: "badge live" }, `deployed ${weight}%`) : null,
      ),
      h(
        "div",
        { class: "actions" },
        previous
          ? h(
              "button",
              {
                type: "button",
                onclick: () => ctx.open("diff", undefined, diffRequest(previous, version)),
              },
              `Diff with v${previous.number}`,
            )
          : null,
        h(
          "button",
          { type: "button", onclick: () => openForm(ctx, version) },
          "New version from this",
        ),
        h(
          "button",
          { type: "button", onclick: () => playground.openVersion(ctx, version.number) },
          "Try it",
        ),
      ),
    ),
    h(
      "dl",
      { class: "meta" },
      metaRow("Model", h("code", {}, version.model)),
      version.api_base ? metaRow("API base", h("code", {}, version.api_base)) : null,
      metaRow("Created", timeElement(version.created_at)),
      metaRow("Memo", version.memo || h("span", { class: "muted" }, "—")),
      metaRow("UUID", h("code", { class: "small" }, version.uuid)),
    ),
    h("h3", {}, "System prompt"),
    h("pre", { class: "prompt" }, version.system_prompt || " "),
    h("h3", {}, "Parameters"),
    params.length
      ? h(
          "table",
          { class: "data compact" },
          h(
            "tbody",
            {},
            params.map(([key, value]) =>
              h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, h("code", {}, JSON.stringify(value)))),
            ),
          ),
        )
      : h("p", { class: "muted" }, "Provider defaults."),
    version.variables?.length
      ? [
          h("h3", {}, "Variables"),
          h("p", { class: "chips" }, version.variables.map((name) => h("code", {}, `{{${name}}}`))),
        ]
      : null,
    version.functions ? [h("h3", {}, "Functions"), h("pre", { class: "code" }, prettyJson(version.functions))] : null,
    version.tools ? [h("h3", {}, "Tools"), h("pre", { class: "code" }, prettyJson(version.tools))] : null,
  );
}

function diffRequest(from, to) {
  return { from: from.number, to: to.number };
}

function metaRow(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

// ---- the form ----------------------------------------------------------------------

function openForm(ctx, base) {
  const form = $("new-version-form");
  const params = { ...(base?.params ?? {}) };
  $("new-version-base").textContent = base
    ? `Filled in from v${base.number}. Saving creates v${(ctx.latestVersion?.number ?? 0) + 1}; v${base.number} stays as it is.`
    : "The first version of this chat model.";
  $("nv-system-prompt").value = base?.system_prompt ?? "";
  $("nv-model").value = base?.model ?? "";
  $("nv-api-base").value = base?.api_base ?? "";
  $("nv-temperature").value = params.temperature ?? "";
  $("nv-max-tokens").value = params.max_tokens ?? "";
  $("nv-top-p").value = params.top_p ?? "";
  for (const key of SHOWN_PARAMS) delete params[key];
  $("nv-other-params").value = Object.keys(params).length ? prettyJson(params) : "";
  $("nv-variables").value = (base?.variables ?? []).join(", ");
  $("nv-memo").value = "";
  $("nv-functions").value = base?.functions ? prettyJson(base.functions) : "";
  $("nv-tools").value = base?.tools ? prettyJson(base.tools) : "";
  form.querySelector("details.advanced").open = Boolean(
    base?.functions || base?.tools || Object.keys(params).length,
  );
  clearInvalid();
  clearError("new-version-error");
  form.hidden = false;
  $("new-version-button").hidden = true;
  $("nv-system-prompt").focus();
}

function closeForm() {
  playground.closeDraft();
  $("new-version-form").hidden = true;
  $("new-version-button").hidden = false;
}

function clearInvalid() {
  for (const id of Object.values(FIELD_INPUTS)) $(id).removeAttribute("aria-invalid");
}

function markOnlyInvalid(field) {
  clearInvalid();
  markInvalid(field);
}

function markInvalid(field) {
  if (!field) return;
  const key = Object.keys(FIELD_INPUTS)
    .sort((a, b) => b.length - a.length)
    .find((name) => field === name || field.startsWith(`${name}.`));
  if (!key) return;
  const input = $(FIELD_INPUTS[key]);
  input.setAttribute("aria-invalid", "true");
  if (input.closest("details")) input.closest("details").open = true;
  input.focus();
}

function jsonInput(id, field) {
  const text = $(id).value.trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError(0, {
      error: "invalid_json",
      detail: `This is not valid JSON: ${error.message}`,
      field,
    });
  }
}

function numberInput(id) {
  const text = $(id).value.trim();
  return text === "" ? undefined : Number(text);
}

function formBody() {
  const params = { ...(jsonInput("nv-other-params", "params") ?? {}) };
  for (const [key, id] of [
    ["temperature", "nv-temperature"],
    ["max_tokens", "nv-max-tokens"],
    ["top_p", "nv-top-p"],
  ]) {
    const value = numberInput(id);
    if (value !== undefined) params[key] = value;
  }
  const variables = $("nv-variables")
    .value.split(/[\s,]+/)
    .filter(Boolean);
  const body = {
    system_prompt: $("nv-system-prompt").value,
    model: $("nv-model").value.trim(),
    params,
    memo: $("nv-memo").value,
  };
  const apiBase = $("nv-api-base").value.trim();
  if (apiBase) body.api_base = apiBase;
  if (variables.length) body.variables = variables;
  const functions = jsonInput("nv-functions", "functions");
  if (functions !== undefined) body.functions = functions;
  const tools = jsonInput("nv-tools", "tools");
  if (tools !== undefined) body.tools = tools;
  return body;
}

async function createVersion(ctx) {
  clearInvalid();
  try {
    const body = formBody();
    const created = await api("POST", path`/v1/chat-models/${ctx.name}/versions`, { body });
    clearError("new-version-error");
    closeForm();
    selected = created.number;
    showStatus("versions-status", `Created version ${created.number}.`);
    await ctx.refresh();
  } catch (error) {
    showError("new-version-error", error);
    markInvalid(error.field);
  }
}
