// One session's timeline, the detail beside (or under) the session list: its messages
// (paged by seq) and its runs (paged by time), merged. A run that stored a reply is shown
// on that reply (with its attempts when it took more than one); a run that did not
// (failed, cancelled, still going) is a card of its own, after the last message stored
// before it ended (a run still going: at the end). A regenerated reply is dimmed and names
// the reply that replaced it. Feedback shows under the message it scores; the session's
// own, under its figures.

import { api, path } from "./api.js";
import {
  $,
  clearError,
  fill,
  formatCost,
  formatMs,
  h,
  humanize,
  prettyJson,
  showError,
  timeElement,
  whileBusy,
} from "./dom.js";

const MESSAGES_PAGE = 50;
const RUNS_PAGE = 100;

let timeline = null; // the open session's loaded messages and runs (see showSession)

export function initTimeline() {
  $("messages-more").addEventListener("click", (event) =>
    whileBusy(event.currentTarget, () => loadTimeline()),
  );
}

/** The uuid of the session shown, or null. */
export function shownSession() {
  return timeline?.session.uuid ?? null;
}

// ---- times -------------------------------------------------------------------------

/** An ISO time as a sortable number of microseconds (Date keeps milliseconds only). */
function stamp(iso) {
  const fraction = /\.(\d+)/.exec(iso);
  const micros = fraction ? Number(`${fraction[1]}000000`.slice(0, 6)) : 0;
  return Date.parse(iso.replace(/\.\d+/, "")) * 1000 + micros;
}

const sameYear = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});
const otherYear = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

/** A short local time ("Dec 4, 21:04"; the year only when not this one), the exact one
 * on hover. */
export function shortTime(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const when = new Date(iso);
  const format = when.getFullYear() === new Date().getFullYear() ? sameYear : otherYear;
  return h("time", { datetime: iso, title: when.toString() }, format.format(when));
}

// ---- the detail ----------------------------------------------------------------------

/** Show this session (a row of the list) and load the start of its timeline. */
export function showSession(session) {
  timeline = {
    session,
    messages: [], // oldest first
    runs: [], // oldest first, by created_at
    nextAfter: 0,
    moreMessages: true,
    runsCursor: null,
    moreRuns: true,
    feedback: null, // all of it, read with the first page
  };
  $("sessions-layout").classList.add("with-detail");
  renderSessionMeta(session);
  fill($("message-list"));
  fill($("session-feedback"));
  $("session-feedback").hidden = true;
  $("session-detail").scrollIntoView({ block: "nearest" });
  loadTimeline();
}

/** Close the detail. */
export function hideSession() {
  timeline = null;
  $("session-detail").hidden = true;
  $("sessions-layout").classList.remove("with-detail");
  fill($("message-list"));
  fill($("session-feedback"));
  $("session-feedback").hidden = true;
}

function renderSessionMeta(session) {
  $("session-detail").hidden = false;
  $("session-heading").textContent = `Session ${session.uuid.slice(0, 8)}`;
  const metadata = Object.keys(session.metadata ?? {}).length ? session.metadata : null;
  fill($("session-meta"),
    meta("UUID", h("code", { class: "small" }, session.uuid)),
    meta("Version", `v${session.version} · `, h("code", {}, session.model)),
    session.user_id ? meta("User", h("code", {}, session.user_id)) : null,
    meta("Created", timeElement(session.created_at)),
    session.parent_session_uuid
      ? meta("Forked from", h("code", { class: "small" }, session.parent_session_uuid),
          ` at #${session.parent_seq}`)
      : null,
    session.variables ? meta("Variables", folded(session.variables)) : null,
    metadata ? meta("Metadata", folded(metadata)) : null,
  );
  const failed = session.failed_runs ?? 0;
  fill($("session-figures"),
    h("span", {}, `${session.message_count} messages`),
    h("span", {}, `${session.run_count ?? 0} runs`),
    failed ? h("span", { class: "error-flag" }, `${failed} failed`) : null,
  );
}

/** A JSON object folded to its key names; open to read it whole. */
function folded(value) {
  return h(
    "details",
    { class: "folded" },
    h("summary", {}, Object.keys(value).join(", ")),
    h("pre", { class: "code" }, prettyJson(value)),
  );
}

function meta(label, ...value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, ...value));
}

/** The next page of messages, and every run up to the newest of them. */
async function loadTimeline() {
  const open = timeline;
  if (!open) return;
  try {
    const page = await api("GET", path`/v1/sessions/${open.session.uuid}/messages`, {
      query: { after: open.nextAfter, limit: MESSAGES_PAGE },
    });
    if (open !== timeline) return;
    open.messages.push(...page.data);
    open.moreMessages = page.has_more;
    open.nextAfter = page.next_after;
    // Runs are read until one started after the newest message shown: every run that
    // ended before that message is then known (a run ends after it starts).
    const horizon = horizonOf(open);
    while (open.moreRuns && (!open.runs.length || stamp(open.runs.at(-1).created_at) <= horizon)) {
      const runs = await api("GET", path`/v1/sessions/${open.session.uuid}/runs`, {
        query: { limit: RUNS_PAGE, cursor: open.runsCursor },
      });
      if (open !== timeline) return;
      open.runs.push(...runs.data);
      open.runsCursor = runs.next_cursor;
      open.moreRuns = Boolean(runs.next_cursor);
    }
    if (!open.feedback) {
      const feedback = await api("GET", path`/v1/sessions/${open.session.uuid}/feedback`);
      if (open !== timeline) return;
      open.feedback = feedback.data;
    }
    clearError("messages-error");
    renderTimeline(open);
  } catch (error) {
    if (open === timeline) showError("messages-error", error);
  }
}

/** Up to when the timeline is complete: the newest message shown, or (all shown) ever. */
function horizonOf(open) {
  if (!open.moreMessages || !open.messages.length) return Infinity;
  return stamp(open.messages.at(-1).created_at);
}

/** When a run without a reply shows: when it ended (a run still going: at the end). */
function runTime(run) {
  return run.finished_at ? stamp(run.finished_at) : Infinity;
}

function renderTimeline(open) {
  const horizon = horizonOf(open);
  const replyRuns = new Map(
    open.runs.filter((run) => run.message_uuid).map((run) => [run.message_uuid, run]),
  );
  const cards = open.runs
    .filter((run) => !run.message_uuid && runTime(run) <= horizon)
    .sort((a, b) => runTime(a) - runTime(b));
  const replacements = regenerations(open.messages);
  const scores = new Map(); // message uuid -> its feedback, oldest first
  for (const feedback of open.feedback.filter((given) => given.message_uuid)) {
    scores.set(feedback.message_uuid, [...(scores.get(feedback.message_uuid) ?? []), feedback]);
  }
  const own = open.feedback.filter((feedback) => !feedback.message_uuid);
  fill($("session-feedback"), own.map(feedbackItem));
  $("session-feedback").hidden = !own.length;
  const items = [];
  let next = 0; // the first card not placed yet
  for (const message of open.messages) {
    const at = stamp(message.created_at);
    while (next < cards.length && runTime(cards[next]) < at) items.push(runCard(cards[next++]));
    items.push(
      messageItem(message, replyRuns.get(message.uuid), replacements, scores.get(message.uuid)),
    );
  }
  while (next < cards.length) items.push(runCard(cards[next++]));
  fill($("message-list"), items);
  $("messages-more").hidden = !open.moreMessages;
  $("messages-empty").hidden = items.length > 0;
}

/** seq -> seq both ways between each regenerated reply and the reply that replaced it:
 * the next reply a run stored after it. */
function regenerations(messages) {
  const replacedBy = new Map();
  const replaces = new Map();
  messages.forEach((message, index) => {
    if (!message.superseded || message.deleted || message.role !== "assistant") return;
    const next = messages
      .slice(index + 1)
      .find((later) => later.role === "assistant" && later.run_uuid && !later.deleted);
    if (!next) return;
    replacedBy.set(message.seq, next.seq);
    replaces.set(next.seq, message.seq);
  });
  return { replacedBy, replaces };
}

function jumpTo(seq) {
  const target = $(`message-${seq}`);
  if (!target) return;
  target.scrollIntoView({ block: "center", behavior: "smooth" });
  target.classList.add("flash");
  setTimeout(() => target.classList.remove("flash"), 1200);
}

function seqButton(seq) {
  return h("button", { type: "button", class: "link-button", onclick: () => jumpTo(seq) }, `#${seq}`);
}

// ---- one message ---------------------------------------------------------------------

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

function calls(message) {
  const found = [];
  if (message.function_call) {
    found.push(
      h(
        "div",
        { class: "call" },
        h("span", { class: "call-label" }, "Function call"),
        h("code", {}, callText(message.function_call)),
      ),
    );
  }
  for (const call of message.tool_calls ?? []) {
    found.push(
      h(
        "div",
        { class: "call" },
        h("span", { class: "call-label" }, "Tool call ", h("code", { class: "small" }, call.id)),
        h("code", {}, callText(call.function ?? {})),
      ),
    );
  }
  return found;
}

function resultOf(message) {
  if (message.tool_call_id) {
    return ["Result of tool call ", h("code", { class: "small" }, message.tool_call_id)];
  }
  if (message.name && message.role === "function") return ["Result of ", h("code", {}, message.name)];
  if (message.name) return [h("code", {}, message.name)];
  return null;
}

function messageItem(message, run, { replacedBy, replaces }, feedback = []) {
  const regenerated = message.superseded && !message.deleted;
  const classes = ["message", `role-${message.role}`];
  if (message.superseded) classes.push("superseded");
  const name = resultOf(message);
  return h(
    "li",
    { class: classes.join(" "), id: `message-${message.seq}` },
    h(
      "div",
      { class: "message-head" },
      h("span", { class: "role" }, message.role),
      name ? h("span", { class: "message-name" }, name) : null,
      h("span", { class: "seq" }, `#${message.seq}`),
      message.deleted ? h("span", { class: "tag tag-deleted" }, "Deleted") : null,
      regenerated
        ? h(
            "span",
            { class: "tag tag-superseded" },
            "Superseded by regenerate",
            replacedBy.has(message.seq) ? [" → ", seqButton(replacedBy.get(message.seq))] : null,
          )
        : null,
      replaces.has(message.seq)
        ? h("span", { class: "tag tag-regenerated" }, "Regenerated, replaces ",
            seqButton(replaces.get(message.seq)))
        : null,
      shortTime(message.created_at),
    ),
    message.content !== null && message.content !== undefined
      ? h("div", { class: "message-content" }, message.content)
      : null,
    calls(message),
    message.run_uuid ? runLine(message, run) : null,
    feedback.length
      ? h("ul", { class: "feedback-list", "aria-label": "Feedback" }, feedback.map(feedbackItem))
      : null,
  );
}

/** One named score: its value, comment and who gave it (their own name, the key's). */
function feedbackItem(feedback) {
  const givers = [feedback.by, feedback.key_name ? `key ${feedback.key_name}` : null]
    .filter(Boolean)
    .join(", ");
  return h(
    "li",
    { class: "feedback" },
    h("span", { class: "feedback-name" }, feedback.name),
    h("span", { class: `feedback-value kind-${feedback.kind}` }, String(feedback.value)),
    feedback.comment ? h("q", { class: "feedback-comment" }, feedback.comment) : null,
    givers ? h("span", { class: "feedback-by" }, givers) : null,
  );
}

function runLine(message, run) {
  const usage = message.usage;
  const attempts = run?.attempts ?? [];
  const parts = [
    message.model,
    usage?.total_tokens != null
      ? `${usage.total_tokens} tokens (${usage.prompt_tokens ?? "?"} in, ${usage.completion_tokens ?? "?"} out)`
      : null,
    message.latency_ms != null ? formatMs(message.latency_ms) : null,
    message.finish_reason ? `finish: ${message.finish_reason}` : null,
    message.cost != null ? formatCost(message.cost) : null,
  ].filter(Boolean);
  return h(
    "div",
    { class: "run-line" },
    parts.join(" · "),
    attempts.length > 1 ? attemptList(attempts, `${attempts.length} attempts`) : null,
  );
}

// ---- one run without a reply -----------------------------------------------------------

const RUN_TITLES = {
  failed: "Run failed",
  cancelled: "Run cancelled",
  running: "Run in progress",
  queued: "Run queued",
  succeeded: "Run succeeded, no reply stored",
};

function runCard(run) {
  const attempts = run.attempts ?? [];
  return h(
    "li",
    { class: `run-card run-${run.status}`, "data-run": run.uuid },
    h(
      "div",
      { class: "message-head" },
      h("span", { class: "role" }, RUN_TITLES[run.status] ?? `Run ${run.status}`),
      run.error_type ? h("code", { class: "error-type" }, run.error_type) : null,
      shortTime(run.finished_at ?? run.created_at),
    ),
    run.error_log ? h("pre", { class: "error-log" }, run.error_log) : null,
    h(
      "dl",
      { class: "run-facts" },
      fact("Attempts", attempts.length ? String(attempts.length) : "—"),
      fact("Latency", formatMs(run.latency_ms)),
      fact("Model", h("code", {}, run.model)),
      fact("Version", `v${run.version}`),
      run.key_name ? fact("Key", run.key_name) : null,
      fact("Run", h("code", { class: "small", title: run.uuid }, run.uuid.slice(0, 8))),
    ),
    attempts.length ? attemptList(attempts, "Each attempt", attempts.length > 1) : null,
  );
}

function fact(label, ...value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, ...value));
}

function attemptList(attempts, summary, open = false) {
  return h(
    "details",
    { class: "attempts", open },
    h("summary", {}, summary),
    h(
      "ol",
      {},
      attempts.map((attempt) =>
        h(
          "li",
          {},
          h("code", {}, attempt.model),
          " · ",
          attempt.outcome === "succeeded"
            ? h("span", { class: "outcome-ok" }, "succeeded")
            : h("span", { class: "outcome-failed" }, humanize(attempt.outcome)),
          ` · ${formatMs(attempt.latency_ms)}`,
          attempt.provider_status ? ` · HTTP ${attempt.provider_status}` : null,
        ),
      ),
    ),
  );
}
