// Sessions: the chat model's conversations (Load more via next_cursor) and one session's
// messages (Load more via next_after), with roles, function calls and tool calls shown.

import { api, path } from "./api.js";
import { $, clearError, fill, formatCost, formatMs, h, prettyJson, showError, timeElement, whileBusy } from "./dom.js";

const SESSIONS_PAGE = 25;
const MESSAGES_PAGE = 50;

let loadedFor = null; // the chat model whose sessions are listed
let nextCursor = null;
let openSession = null; // the session whose messages are shown
let nextAfter = null;

export function init(ctx) {
  $("sessions-refresh").addEventListener("click", (event) =>
    whileBusy(event.currentTarget, () => loadSessions(ctx, { restart: true })),
  );
  $("sessions-more").addEventListener("click", (event) =>
    whileBusy(event.currentTarget, () => loadSessions(ctx, { restart: false })),
  );
  $("messages-more").addEventListener("click", (event) =>
    whileBusy(event.currentTarget, () => loadMessages({ restart: false })),
  );
  $("session-close").addEventListener("click", closeSession);
}

export function reset() {
  loadedFor = null;
  nextCursor = null;
  $("sessions-table").tBodies[0].replaceChildren();
  $("sessions-more").hidden = true;
  $("sessions-empty").hidden = true;
  clearError("sessions-error");
  closeSession();
}

export function render() {
  // Sessions do not depend on versions or releases: nothing to redraw.
}

export function show(ctx) {
  if (ctx.chatModel && loadedFor !== ctx.name) loadSessions(ctx, { restart: true });
}

async function loadSessions(ctx, { restart }) {
  const name = ctx.name;
  loadedFor = name;
  try {
    const page = await api("GET", "/v1/sessions", {
      query: { chat_model: name, limit: SESSIONS_PAGE, cursor: restart ? null : nextCursor },
    });
    if (name !== ctx.name) return;
    clearError("sessions-error");
    const body = $("sessions-table").tBodies[0];
    if (restart) fill(body);
    body.append(...page.data.map(sessionRow));
    nextCursor = page.next_cursor;
    $("sessions-more").hidden = !nextCursor;
    $("sessions-empty").hidden = body.rows.length > 0;
    markOpenRow();
  } catch (error) {
    if (restart) loadedFor = null;
    showError("sessions-error", error);
  }
}

function sessionRow(session) {
  const row = h(
    "tr",
    { "data-session": session.uuid },
    h(
      "td",
      {},
      h(
        "button",
        { type: "button", class: "link-button mono", title: session.uuid },
        session.uuid.slice(0, 8),
      ),
    ),
    h("td", {}, `v${session.version}`),
    h("td", {}, String(session.message_count)),
    h("td", { class: "nowrap" }, timeElement(session.last_message_at)),
    h("td", { class: "nowrap" }, timeElement(session.created_at)),
  );
  row.addEventListener("click", () => {
    openSession = session;
    markOpenRow();
    renderSessionMeta(session);
    $("session-detail").scrollIntoView({ block: "nearest" });
    loadMessages({ restart: true });
  });
  return row;
}

function markOpenRow() {
  for (const row of $("sessions-table").tBodies[0].rows) {
    row.classList.toggle("selected", row.dataset.session === openSession?.uuid);
  }
}

function closeSession() {
  openSession = null;
  nextAfter = null;
  $("session-detail").hidden = true;
  fill($("message-list"));
  markOpenRow();
}

function renderSessionMeta(session) {
  $("session-detail").hidden = false;
  $("session-heading").textContent = `Session ${session.uuid.slice(0, 8)}`;
  const metadata = Object.keys(session.metadata ?? {}).length ? session.metadata : null;
  fill($("session-meta"),
    meta("UUID", h("code", { class: "small" }, session.uuid)),
    meta("Version", `v${session.version} · `, h("code", {}, session.model)),
    meta("Created", timeElement(session.created_at)),
    session.variables ? meta("Variables", h("pre", { class: "code" }, prettyJson(session.variables))) : null,
    metadata ? meta("Metadata", h("pre", { class: "code" }, prettyJson(metadata))) : null,
  );
}

function meta(label, ...value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, ...value));
}

async function loadMessages({ restart }) {
  const session = openSession;
  if (!session) return;
  try {
    const page = await api("GET", path`/v1/sessions/${session.uuid}/messages`, {
      query: { after: restart ? 0 : nextAfter, limit: MESSAGES_PAGE },
    });
    if (session !== openSession) return;
    clearError("messages-error");
    const list = $("message-list");
    if (restart) fill(list);
    list.append(...page.data.map(messageItem));
    nextAfter = page.next_after;
    $("messages-more").hidden = !page.has_more;
    $("messages-empty").hidden = list.children.length > 0;
  } catch (error) {
    showError("messages-error", error);
  }
}

/** "name(args)" with the arguments compacted when they are JSON. */
function callText(call) {
  let args = call.arguments ?? "";
  try {
    args = JSON.stringify(JSON.parse(args));
  } catch {
    // not JSON: show what the model produced
  }
  return `${call.name}(${args})`;
}

function messageItem(message) {
  const calls = [];
  if (message.function_call) {
    calls.push(
      h(
        "div",
        { class: "call" },
        h("span", { class: "call-label" }, "Function call"),
        h("code", {}, callText(message.function_call)),
      ),
    );
  }
  for (const call of message.tool_calls ?? []) {
    calls.push(
      h(
        "div",
        { class: "call" },
        h("span", { class: "call-label" }, "Tool call ", h("code", { class: "small" }, call.id)),
        h("code", {}, callText(call.function ?? {})),
      ),
    );
  }
  const resultOf = message.tool_call_id
    ? ["Result of tool call ", h("code", { class: "small" }, message.tool_call_id)]
    : message.name && message.role === "function"
      ? ["Result of ", h("code", {}, message.name)]
      : message.name
        ? [h("code", {}, message.name)]
        : null;
  return h(
    "li",
    { class: `message role-${message.role}` },
    h(
      "div",
      { class: "message-head" },
      h("span", { class: "role" }, message.role),
      resultOf ? h("span", { class: "message-name" }, resultOf) : null,
      h("span", { class: "seq" }, `#${message.seq}`),
      timeElement(message.created_at),
    ),
    message.content !== null && message.content !== undefined
      ? h("div", { class: "message-content" }, message.content)
      : null,
    calls,
    message.run_uuid ? runLine(message) : null,
  );
}

function runLine(message) {
  const usage = message.usage;
  const parts = [
    message.model,
    usage?.total_tokens != null
      ? `${usage.total_tokens} tokens (${usage.prompt_tokens ?? "?"} in, ${usage.completion_tokens ?? "?"} out)`
      : null,
    message.latency_ms != null ? formatMs(message.latency_ms) : null,
    message.finish_reason ? `finish: ${message.finish_reason}` : null,
    message.cost != null ? formatCost(message.cost) : null,
  ].filter(Boolean);
  return h("div", { class: "run-line" }, parts.join(" · "));
}
