// Releases: the history of publishes, splits and rollbacks, newest first, each with the
// server's warnings about the template variables new sessions needed after it.

import { $, fill, h, showError, timeElement, weightBadges, whileBusy } from "./dom.js";

export function init(ctx) {
  $("releases-refresh").addEventListener("click", (event) =>
    whileBusy(event.currentTarget, async () => {
      try {
        await ctx.refresh();
      } catch (error) {
        showError("chat-model-error", error);
      }
    }),
  );
}

export function reset() {
  $("releases-table").tBodies[0].replaceChildren();
}

export function render(ctx) {
  const rows = ctx.releases.map((release, index) =>
    h(
      "tr",
      { class: index === 0 ? "live-row" : null },
      h(
        "td",
        { class: "nowrap" },
        h("span", {}, `#${release.release}`),
        index === 0 ? h("span", { class: "badge live" }, "live") : null,
      ),
      h("td", {}, h("span", { class: `kind kind-${release.kind}` }, release.kind)),
      h("td", {}, weightBadges(release.versions)),
      h("td", {}, weightBadges(release.previous_versions, "—")),
      h("td", {}, release.published_by ?? h("span", { class: "muted" }, "—")),
      h(
        "td",
        { class: "note" },
        release.note || h("span", { class: "muted" }, "—"),
        // What the release meant for clients creating sessions (see publish.js).
        (release.warnings ?? []).map((w) => h("p", { class: "release-warning" }, w.detail)),
      ),
      h("td", { class: "nowrap" }, timeElement(release.created_at)),
    ),
  );
  $("releases-table").tBodies[0].replaceChildren(...rows);
  $("releases-empty").hidden = ctx.releases.length > 0;
}
