// The playground ("Try it"): a conversation with a saved version, or with the unsaved
// New-version form, through the test routes that store nothing. With "Compare with", each
// turn also runs on a second version: the same written messages, each column continuing
// from its own replies. Errors are shown as values, in the column they belong to.

import { ApiError, api, path } from "./api.js";
import { $, errorBox, fill, formatCost, formatMs, h, humanize, truncate, whileBusy } from "./dom.js";

const ROLES = [
  ["user", "User"],
  ["assistant", "Assistant"],
  ["function", "Function result"],
  ["tool", "Tool result"],
];

let panel = null; // the panel element, built once
let state = null; // what the open playground is about; null when closed

/**
 * The open playground:
 *   subject: {kind: "draft", read, markInvalid} or {kind: "version", number}
 *   turns: written {role, content} or answered {replies: {columnKey: reply}}, where a
 *     reply is {pending: true}, {response: LLMResponse} or {failure: ApiError}
 *   values: template variable values by name; compare: a version number or null
 *   generation: bumped by reset and close, so a late answer is dropped
 */
function freshState(ctx, subject) {
  return { ctx, subject, turns: [], values: {}, compare: null, generation: 0 };
}

/** Try the New-version form's current values: `read()` gives the version body (it may
 * throw an ApiError naming a form field), `markInvalid(field)` marks that form field. */
export function openDraft(ctx, { read, markInvalid }) {
  open(ctx, { kind: "draft", read, markInvalid }, $("new-version-form"));
}

/** Try saved version `number`. */
export function openVersion(ctx, number) {
  open(ctx, { kind: "version", number }, $("version-detail").parentElement);
}

/** Close the playground (and forget its conversation). */
export function close() {
  if (state) state.generation += 1;
  state = null;
  if (panel) panel.hidden = true;
}

/** Close it if it is trying the draft (the form was closed or saved). */
export function closeDraft() {
  if (state?.subject.kind === "draft") close();
}

/** The chat model's versions changed: refresh what depends on them. */
export function sync(ctx) {
  if (!state || ctx.name !== state.ctx.name) return;
  state.ctx = ctx;
  renderSetup();
}

function open(ctx, subject, after) {
  const same =
    state &&
    state.ctx.name === ctx.name &&
    state.subject.kind === subject.kind &&
    state.subject.number === subject.number;
  if (same) state.subject = subject;
  else {
    if (state) state.generation += 1;
    state = freshState(ctx, subject);
  }
  buildPanel();
  after.after(panel);
  panel.hidden = false;
  $("pg-heading").textContent =
    subject.kind === "draft" ? "Try the draft" : `Try version ${subject.number}`;
  fill($("pg-error"));
  renderSetup();
  renderTranscript();
  panel.scrollIntoView({ block: "nearest" });
  $("pg-message").focus();
}

// ---- the panel -----------------------------------------------------------------------

function buildPanel() {
  if (panel) return;
  panel = h(
    "section",
    { id: "playground", class: "card playground", "aria-labelledby": "pg-heading" },
    h(
      "header",
      { class: "detail-head" },
      h("h2", { id: "pg-heading" }, "Try it"),
      h("div", { class: "actions" }, h("button", { type: "button", onclick: close }, "Close")),
    ),
    h("p", { id: "pg-subject", class: "hint" }),
    h(
      "div",
      { class: "pg-setup" },
      h("fieldset", { id: "pg-variables", class: "pg-variables" }),
      h(
        "div",
        { class: "pg-compare" },
        h("label", { for: "pg-compare" }, "Compare with"),
        h("select", { id: "pg-compare", onchange: onCompareChange }),
      ),
    ),
    h(
      "details",
      { class: "advanced pg-functions" },
      h("summary", {}, "Functions (JSON)"),
      h(
        "label",
        { for: "pg-functions" },
        "Functions or tools",
        h("span", { class: "optional" }, "optional; replaces the version's own"),
      ),
      h("textarea", {
        id: "pg-functions",
        rows: 4,
        class: "code",
        spellcheck: "false",
        placeholder: '[{"name": "get_weather", "parameters": {"type": "object"}}]',
      }),
    ),
    h("div", { id: "pg-error" }),
    h("div", { id: "pg-columns", class: "pg-columns" }),
    h("ol", { id: "pg-transcript", class: "pg-transcript", "aria-label": "Conversation" }),
    h(
      "p",
      { id: "pg-empty", class: "empty" },
      "No messages yet. Write one below and send it; nothing is stored.",
    ),
    h(
      "form",
      { id: "pg-composer", class: "pg-composer", novalidate: true, onsubmit: onSend },
      h(
        "div",
        { class: "pg-compose-row" },
        h(
          "div",
          { class: "pg-role" },
          h("label", { for: "pg-role" }, "As"),
          h(
            "select",
            { id: "pg-role" },
            ROLES.map(([value, text]) => h("option", { value }, text)),
          ),
        ),
        h(
          "div",
          { class: "pg-text" },
          h("label", { for: "pg-message" }, "Message"),
          h("textarea", {
            id: "pg-message",
            rows: 3,
            placeholder: "Write a message; Ctrl+Enter sends it",
            onkeydown: onMessageKey,
          }),
        ),
      ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary", id: "pg-send" }, "Send"),
        h("button", { type: "button", id: "pg-add", onclick: onAdd }, "Add without sending"),
        h("button", { type: "button", id: "pg-reset", onclick: onReset }, "Reset"),
      ),
    ),
  );
}

function subjectVersion() {
  return state.subject.kind === "version"
    ? state.ctx.versions.find((v) => v.number === state.subject.number)
    : null;
}

/** The subject's subtitle, the variable inputs and the compare choices. */
function renderSetup() {
  const version = subjectVersion();
  $("pg-subject").textContent = version
    ? `${version.model}${version.memo ? ` · ${truncate(version.memo, 80)}` : ""}. Nothing is stored.`
    : "The form's current values, not saved. Nothing is stored.";
  const others = [...state.ctx.versions]
    .filter((v) => v.number !== state.subject.number)
    .sort((a, b) => b.number - a.number);
  if (state.compare !== null && !others.some((v) => v.number === state.compare)) {
    state.compare = null;
  }
  const select = $("pg-compare");
  fill(select,
    h("option", { value: "" }, "Nothing"),
    others.map((v) =>
      h("option", { value: v.number }, `v${v.number}${v.memo ? ` — ${truncate(v.memo, 40)}` : ""}`),
    ),
  );
  select.value = state.compare === null ? "" : String(state.compare);
  renderVariables();
  renderColumnHeads();
}

/** One input per template variable any column declares; values kept across redraws. */
function renderVariables() {
  const names = [...new Set(columns().flatMap((column) => declaredVariables(column)))];
  const box = $("pg-variables");
  box.hidden = names.length === 0;
  fill(box,
    h("legend", {}, "Template variables"),
    names.map((name) =>
      h(
        "div",
        { class: "pg-variable" },
        h("label", { for: `pg-var-${name}` }, h("code", {}, `{{${name}}}`)),
        h("input", {
          id: `pg-var-${name}`,
          autocomplete: "off",
          value: state.values[name] ?? "",
          oninput: (event) => {
            state.values[name] = event.target.value;
          },
        }),
      ),
    ),
  );
}

function renderColumnHeads() {
  const heads = columns();
  const box = $("pg-columns");
  box.hidden = heads.length < 2;
  box.className = `pg-columns pg-cols-${heads.length}`;
  fill(box, heads.map((column) => h("div", { class: "pg-column-head" }, columnTitle(column))));
}

/** The columns: the subject first, the compared version second. Keys name them in turns. */
function columns() {
  const first =
    state.subject.kind === "draft"
      ? { key: "draft", label: "Draft", draft: true }
      : versionColumn(state.subject.number);
  return state.compare === null ? [first] : [first, versionColumn(state.compare)];
}

function versionColumn(number) {
  return { key: `v${number}`, label: `v${number}`, number };
}

function columnTitle(column) {
  if (column.draft) return [h("strong", {}, "Draft"), h("span", { class: "muted" }, " unsaved")];
  const version = state.ctx.versions.find((v) => v.number === column.number);
  return [
    h("strong", {}, column.label),
    version ? h("code", { class: "small" }, ` ${version.model}`) : null,
  ];
}

function declaredVariables(column) {
  if (!column.draft) {
    return state.ctx.versions.find((v) => v.number === column.number)?.variables ?? [];
  }
  try {
    return state.subject.read().variables ?? [];
  } catch {
    return []; // the form does not parse yet: its error shows on sending
  }
}

// ---- the conversation ------------------------------------------------------------------

function renderTranscript() {
  const list = $("pg-transcript");
  const keys = columns().map((column) => column.key);
  fill(list,
    state.turns.map((turn, index) =>
      turn.replies ? repliesItem(turn, index, keys) : writtenItem(turn, index),
    ),
  );
  $("pg-empty").hidden = state.turns.length > 0;
}

function removeButton(index, text, label) {
  return h(
    "button",
    {
      type: "button",
      class: "link-button pg-remove",
      "aria-label": label,
      onclick: () => {
        state.turns.splice(index, 1);
        renderTranscript();
      },
    },
    text,
  );
}

function writtenItem(turn, index) {
  return h(
    "li",
    { class: `message role-${turn.role}` },
    h(
      "div",
      { class: "message-head" },
      h("span", { class: "role" }, turn.role),
      removeButton(index, "Remove", `Remove message ${index + 1}`),
    ),
    h("div", { class: "message-content" }, turn.content),
  );
}

function repliesItem(turn, index, keys) {
  const shown = Object.keys(turn.replies);
  const order = [...keys.filter((k) => shown.includes(k)), ...shown.filter((k) => !keys.includes(k))];
  return h(
    "li",
    { class: `pg-replies pg-cols-${order.length}` },
    order.map((key) => replyCard(key, turn.replies[key])),
    h(
      "div",
      { class: "pg-replies-foot" },
      removeButton(index, order.length > 1 ? "Remove replies" : "Remove reply", `Remove reply ${index + 1}`),
    ),
  );
}

function replyCard(key, reply) {
  const label = key === "draft" ? "Draft" : key;
  const head = h(
    "div",
    { class: "message-head" },
    h("span", { class: "role" }, "assistant"),
    h("span", { class: "pg-column" }, label),
  );
  if (reply.pending) {
    return h(
      "div",
      { class: "message role-assistant pg-reply pending", "data-column": key, "aria-busy": "true" },
      head,
      h("div", { class: "message-content muted" }, "Waiting for the model…"),
    );
  }
  if (reply.failure) {
    return h(
      "div",
      { class: "message pg-reply failed", "data-column": key },
      head,
      errorBox(reply.failure),
    );
  }
  const answer = reply.response;
  const body = answer.error
    ? h(
        "div",
        { class: "error-box", role: "alert" },
        h("strong", {}, humanize(answer.error_type ?? "error")),
        answer.error_log ? h("pre", { class: "pg-error-log" }, answer.error_log) : null,
      )
    : [
        answer.content != null ? h("div", { class: "message-content" }, answer.content) : null,
        answer.function_call ? callLine("Function call", answer.function_call) : null,
        (answer.tool_calls ?? []).map((call) => callLine(`Tool call ${call.id}`, call.function)),
      ];
  return h(
    "div",
    { class: `message pg-reply ${answer.error ? "failed" : "role-assistant"}`, "data-column": key },
    head,
    body,
    h("div", { class: "run-line pg-figures" }, figuresText(answer)),
  );
}

function callLine(label, call) {
  return h(
    "div",
    { class: "call" },
    h("span", { class: "call-label" }, label),
    h("code", {}, `${call.name}(${call.arguments ?? ""})`),
  );
}

function figuresText(answer) {
  const usage = answer.usage;
  return [
    answer.latency_ms != null ? formatMs(answer.latency_ms) : null,
    usage?.total_tokens != null
      ? `${usage.total_tokens} tokens ` +
        `(${usage.prompt_tokens ?? "?"} in, ${usage.completion_tokens ?? "?"} out)`
      : null,
    answer.finish_reason ? `finish: ${answer.finish_reason}` : null,
    answer.cost != null ? formatCost(answer.cost) : null,
  ]
    .filter(Boolean)
    .join(" · ");
}

/** Column `key`'s messages: the written turns, and at each answered turn its own reply
 * (the first column's when it did not answer that turn; none when that failed). */
function messagesFor(key, firstKey) {
  const messages = [];
  for (const turn of state.turns) {
    if (!turn.replies) {
      messages.push({ role: turn.role, content: turn.content });
      continue;
    }
    const answer = (turn.replies[key] ?? turn.replies[firstKey])?.response;
    if (answer && !answer.error) messages.push(assistantMessage(answer));
  }
  return messages;
}

function assistantMessage(answer) {
  const message = { role: "assistant", content: answer.content ?? null };
  if (answer.function_call) {
    const { name, arguments: args } = answer.function_call;
    message.function_call = { name, arguments: args };
  }
  if (answer.tool_calls?.length) {
    message.tool_calls = answer.tool_calls.map((call) => ({
      id: call.id,
      type: "function",
      function: { name: call.function.name, arguments: call.function.arguments },
    }));
  }
  return message;
}

// ---- actions ---------------------------------------------------------------------------

function onCompareChange(event) {
  state.compare = event.target.value ? Number(event.target.value) : null;
  renderVariables();
  renderColumnHeads();
}

function onMessageKey(event) {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    $("pg-composer").requestSubmit();
  }
}

/** Put the composer's text in the conversation; false when there was none. */
function takeWritten() {
  const text = $("pg-message").value;
  if (!text.trim()) return false;
  state.turns.push({ role: $("pg-role").value, content: text });
  $("pg-message").value = "";
  $("pg-role").value = "user";
  return true;
}

function onAdd() {
  if (takeWritten()) renderTranscript();
  $("pg-message").focus();
}

function onReset() {
  state.generation += 1;
  state.turns = [];
  fill($("pg-error"));
  renderTranscript();
  $("pg-message").focus();
}

function onSend(event) {
  event.preventDefault();
  whileBusy($("pg-send"), send);
}

async function send() {
  fill($("pg-error"));
  $("pg-functions").removeAttribute("aria-invalid");
  let options;
  let draft = null;
  try {
    options = runOptions();
  } catch (error) {
    fill($("pg-error"), errorBox(error));
    $("pg-functions").setAttribute("aria-invalid", "true");
    $("pg-functions").closest("details").open = true;
    return;
  }
  if (state.subject.kind === "draft") {
    try {
      draft = state.subject.read();
    } catch (error) {
      fill($("pg-error"), errorBox(error, "Fix the form above, then send again."));
      state.subject.markInvalid(error.field);
      return;
    }
    renderVariables(); // the form's variables may have changed
  }
  takeWritten();
  if (!state.turns.some((turn) => !turn.replies)) {
    fill($("pg-error"), errorBox({ code: "nothing_to_send", detail: "Write a message first." }));
    return;
  }
  const cols = columns();
  const requests = cols.map((column) => ({
    column,
    url: column.draft
      ? path`/v1/chat-models/${state.ctx.name}/versions/draft/test`
      : path`/v1/chat-models/${state.ctx.name}/versions/${column.number}/test`,
    body: {
      ...(column.draft ? { version: draft } : {}),
      messages: messagesFor(column.key, cols[0].key),
      ...variablesFor(column, draft),
      ...options,
    },
  }));
  const turn = { replies: Object.fromEntries(cols.map((c) => [c.key, { pending: true }])) };
  state.turns.push(turn);
  renderTranscript();
  const current = state;
  const generation = state.generation;
  await Promise.all(
    requests.map(async ({ column, url, body }) => {
      let reply;
      try {
        reply = { response: await api("POST", url, { body }) };
      } catch (error) {
        reply = { failure: error };
        if (column.draft && error.field?.startsWith("version.")) {
          current.subject.markInvalid(error.field.slice("version.".length));
        }
      }
      if (state !== current || current.generation !== generation) return; // reset meanwhile
      turn.replies[column.key] = reply;
      renderTranscript();
    }),
  );
}

function variablesFor(column, draft) {
  const names = column.draft ? (draft?.variables ?? []) : declaredVariables(column);
  if (!names.length) return {};
  return { variables: Object.fromEntries(names.map((name) => [name, state.values[name] ?? ""])) };
}

/** The functions box as run options: a list of {type, function} is tools, else functions. */
function runOptions() {
  const text = $("pg-functions").value.trim();
  if (!text) return {};
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw functionsError(`This is not valid JSON (${error.message}).`);
  }
  if (!Array.isArray(parsed)) {
    throw functionsError("Give a JSON list of functions, or of tools.");
  }
  return parsed.length && parsed.every((item) => item && typeof item === "object" && "function" in item)
    ? { tools: parsed }
    : { functions: parsed };
}

function functionsError(detail) {
  return new ApiError(0, { error: "invalid_json", detail, field: "functions" });
}
