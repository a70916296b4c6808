// Small DOM helpers. Text always goes in as text nodes, never as HTML.

export const $ = (id) => document.getElementById(id);

/** h("td", {class: "num"}, "text", child, [more]) */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key.startsWith("on") && typeof value === "function") {
      element.addEventListener(key.slice(2), value);
    } else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const dateFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});

/** A <time> element showing a local date and time, the exact value on hover. */
export function timeElement(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const when = new Date(iso);
  return h("time", { datetime: iso, title: when.toString() }, dateFormat.format(when));
}

/** Version -> weight pairs, sorted by version: [[1, 50], [2, 50]]. */
export function weightPairs(versions) {
  return Object.entries(versions ?? {})
    .map(([number, weight]) => [Number(number), weight])
    .sort((a, b) => a[0] - b[0]);
}

/** "v1 50% · v2 50%", or the fallback when nothing is published. */
export function weightsText(versions, fallback = "nothing published") {
  const pairs = weightPairs(versions);
  return pairs.length ? pairs.map(([n, w]) => `v${n} ${w}%`).join(" · ") : fallback;
}

/** One badge per published version: [v1 · 50%] [v2 · 50%]. */
export function weightBadges(versions, fallback = "nothing published") {
  const pairs = weightPairs(versions);
  if (!pairs.length) return h("span", { class: "muted" }, fallback);
  return h(
    "span",
    { class: "badges" },
    pairs.map(([n, w]) => h("span", { class: "badge" }, `v${n} · ${w}%`)),
  );
}

export function humanize(code) {
  const text = String(code).replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The inline box for an API error: what went wrong, the detail, and the field. */
export function errorBox(error, hint) {
  const code = error.code ?? "error";
  const status = error.status ? ` (${error.status})` : "";
  const problems = error.errors?.length > 1 ? error.errors : null;
  return h(
    "div",
    { class: "error-box", role: "alert" },
    h("strong", {}, humanize(code) + status),
    problems
      ? h(
          "ul",
          {},
          problems.map((p) => h("li", {}, h("code", {}, p.field), ": ", p.message)),
        )
      : h("p", {}, error.detail ?? error.message),
    error.field && !problems
      ? h("p", { class: "error-field" }, "Field: ", h("code", {}, error.field))
      : null,
    hint ? h("p", { class: "error-hint" }, hint) : null,
  );
}

export function showError(containerId, error, hint) {
  fill($(containerId), errorBox(error, hint));
}

export function clearError(containerId) {
  fill($(containerId));
}

/** A short-lived success line in a role=status element. */
export function showStatus(containerId, text) {
  const box = $(containerId);
  fill(box, h("div", { class: "status-box" }, text));
}

/** Disable the button while the action runs, so a double click sends one request. */
export async function whileBusy(button, action) {
  if (button.disabled) return undefined;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

export function formatNumber(value) {
  return value === null || value === undefined ? "—" : Number(value).toLocaleString();
}

export function formatMs(value) {
  if (value === null || value === undefined) return "—";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
}

export function formatCost(value) {
  if (value === null || value === undefined) return "—";
  return "$" + Number(value).toLocaleString(undefined, {
    minimumFractionDigits: 2,
    maximumFractionDigits: 6,
  });
}

export function prettyJson(value) {
  return JSON.stringify(value, null, 2);
}

/** Options for a version <select>, newest first. Keeps the current choice if it still
 * exists (unless keepChoice is false), else selects `preferred`. */
export function fillVersionSelect(select, versions, preferred, keepChoice = true) {
  const fallback = preferred != null ? String(preferred) : "";
  const keep = (keepChoice && select.value) || fallback;
  fill(select,
    ...[...versions]
      .sort((a, b) => b.number - a.number)
      .map((v) =>
        h("option", { value: v.number }, `v${v.number}${v.memo ? ` — ${truncate(v.memo, 40)}` : ""}`),
      ),
  );
  if (keep && versions.some((v) => String(v.number) === keep)) select.value = keep;
}

export function truncate(text, length) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

/** Replace an element's children, skipping null/false/undefined like h() does. */
export function fill(element, ...children) {
  element.replaceChildren(
    ...children
      .flat(Infinity)
      .filter((child) => child !== undefined && child !== null && child !== false),
  );
}
