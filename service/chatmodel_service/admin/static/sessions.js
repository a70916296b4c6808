// Sessions: the chat model's conversations as an observability view. The list is
// filtered on the server (GET /v1/sessions: version, user_id, created_after,
// created_before, has_errors, q) and paged with next_cursor; a row opens the session's
// timeline of messages and runs (session-timeline.js).

import { api } from "./api.js";
import { $, clearError, fill, h, showError, whileBusy } from "./dom.js";
import { hideSession, initTimeline, shortTime, showSession, shownSession } from "./session-timeline.js";

const SESSIONS_PAGE = 25;
const TYPING_PAUSE_MS = 350; // a text filter applies once typing pauses this long

let loadedFor = null; // the chat model whose sessions are listed
let nextCursor = null;
let listedQuery = {}; // the filters of the rows shown: "Load more" keeps to them
let listRequest = 0; // the newest list request: older answers are dropped
let shownCount = 0;
let typingTimer = null;

/** A date input's value (local midnight) as an ISO instant; `days` later if given. */
function localMidnight(value, days = 0) {
  const [year, month, day] = value.split("-").map(Number);
  return new Date(year, month - 1, day + days).toISOString();
}

// ---- section interface (app.js) ------------------------------------------------------

export function init(ctx) {
  $("sessions-refresh").addEventListener("click", (event) =>
    whileBusy(event.currentTarget, () => loadSessions(ctx, { restart: true })),
  );
  $("sessions-more").addEventListener("click", (event) =>
    whileBusy(event.currentTarget, () => loadSessions(ctx, { restart: false })),
  );
  $("session-close").addEventListener("click", closeSession);
  initTimeline();

  const form = $("sessions-filters");
  const apply = () => {
    clearTimeout(typingTimer);
    loadSessions(ctx, { restart: true });
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apply();
  });
  for (const id of ["sessions-filter-version", "sessions-filter-errors"]) {
    $(id).addEventListener("change", apply);
  }
  for (const id of ["sessions-filter-from", "sessions-filter-to"]) {
    $(id).addEventListener("change", apply);
  }
  for (const id of ["sessions-filter-user", "sessions-filter-text"]) {
    $(id).addEventListener("input", () => {
      clearTimeout(typingTimer);
      typingTimer = setTimeout(apply, TYPING_PAUSE_MS);
    });
  }
  $("sessions-filter-clear").addEventListener("click", () => {
    form.reset();
    apply();
  });
}

export function reset() {
  loadedFor = null;
  nextCursor = null;
  listedQuery = {};
  listRequest += 1;
  shownCount = 0;
  clearTimeout(typingTimer);
  $("sessions-filters").reset();
  fill($("sessions-filter-version"), h("option", { value: "" }, "All versions"));
  $("sessions-table").tBodies[0].replaceChildren();
  $("sessions-more").hidden = true;
  $("sessions-empty").hidden = true;
  $("sessions-status").textContent = "";
  clearError("sessions-error");
  closeSession();
}

export function render(ctx) {
  // The version filter offers the chat model's versions, newest first.
  const select = $("sessions-filter-version");
  const chosen = select.value;
  fill(select,
    h("option", { value: "" }, "All versions"),
    [...ctx.versions]
      .sort((a, b) => b.number - a.number)
      .map((v) => h("option", { value: v.number }, `v${v.number}`)),
  );
  if ([...select.options].some((option) => option.value === chosen)) select.value = chosen;
}

export function show(ctx) {
  if (ctx.chatModel && loadedFor !== ctx.name) loadSessions(ctx, { restart: true });
}

// ---- the list ----------------------------------------------------------------------

/** The filter bar as GET /v1/sessions query parameters (unset ones left out). */
function filterQuery() {
  const from = $("sessions-filter-from").value;
  const to = $("sessions-filter-to").value;
  return {
    version: $("sessions-filter-version").value || null,
    user_id: $("sessions-filter-user").value.trim() || null,
    created_after: from ? localMidnight(from) : null,
    created_before: to ? localMidnight(to, 1) : null, // "to" is a whole day
    has_errors: $("sessions-filter-errors").value || null,
    q: $("sessions-filter-text").value.trim() || null,
  };
}

function filtered(query) {
  return Object.values(query).some((value) => value !== null);
}

async function loadSessions(ctx, { restart }) {
  const name = ctx.name;
  const request = ++listRequest;
  const query = restart ? filterQuery() : listedQuery;
  loadedFor = name;
  $("sessions-table").setAttribute("aria-busy", "true");
  try {
    const page = await api("GET", "/v1/sessions", {
      query: {
        chat_model: name,
        limit: SESSIONS_PAGE,
        cursor: restart ? null : nextCursor,
        ...query,
      },
    });
    if (request !== listRequest || name !== ctx.name) return;
    clearError("sessions-error");
    const body = $("sessions-table").tBodies[0];
    if (restart) {
      fill(body);
      shownCount = 0;
      listedQuery = query;
    }
    body.append(...page.data.map(sessionRow));
    shownCount += page.data.length;
    nextCursor = page.next_cursor;
    $("sessions-more").hidden = !nextCursor;
    const empty = $("sessions-empty");
    empty.hidden = shownCount > 0;
    empty.textContent = filtered(query) ? "No sessions match these filters." : "No sessions yet.";
    $("sessions-status").textContent = statusText(query);
    markOpenRow();
  } catch (error) {
    if (request !== listRequest) return;
    if (restart) loadedFor = null;
    showError("sessions-error", error);
  } finally {
    if (request === listRequest) $("sessions-table").removeAttribute("aria-busy");
  }
}

function statusText(query) {
  const count = `${shownCount} session${shownCount === 1 ? "" : "s"}`;
  const more = nextCursor ? " (more below)" : "";
  return `${count}${more}${filtered(query) ? " match these filters" : ""}.`;
}

function sessionRow(session) {
  const failed = session.failed_runs > 0;
  const row = h(
    "tr",
    { "data-session": session.uuid, class: failed ? "has-errors" : null },
    h(
      "td",
      { class: "session-created", "data-label": "Created" },
      shortTime(session.created_at),
      h(
        "button",
        { type: "button", class: "link-button mono session-id", title: session.uuid },
        session.uuid.slice(0, 8),
      ),
    ),
    h("td", { "data-label": "Version" }, `v${session.version}`),
    h(
      "td",
      { class: "session-user", "data-label": "User" },
      session.user_id
        ? h("span", { class: "mono", title: session.user_id }, session.user_id)
        : h("span", { class: "muted" }, "—"),
    ),
    h(
      "td",
      { class: "session-first", "data-label": "First user message" },
      session.first_user_message
        ? h("span", { title: session.first_user_message }, session.first_user_message)
        : h("span", { class: "muted" }, "no user message"),
    ),
    h("td", { class: "num", "data-label": "Msgs" }, String(session.message_count)),
    h("td", { class: "num", "data-label": "Runs" }, String(session.run_count)),
    h(
      "td",
      { class: "session-errors", "data-label": "Errors" },
      failed
        ? h(
            "span",
            { class: "error-flag", title: `${session.failed_runs} failed run(s)` },
            `${session.failed_runs} failed`,
          )
        : h("span", { class: "muted" }, "—"),
    ),
  );
  row.addEventListener("click", () => {
    showSession(session);
    markOpenRow();
  });
  return row;
}

function markOpenRow() {
  for (const row of $("sessions-table").tBodies[0].rows) {
    const open = row.dataset.session === shownSession();
    row.classList.toggle("selected", open);
    if (open) row.setAttribute("aria-current", "true");
    else row.removeAttribute("aria-current");
  }
}

function closeSession() {
  hideSession();
  markOpenRow();
}
