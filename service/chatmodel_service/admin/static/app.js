// The admin page: the chat model list on the left, one chat model's sections on the right.
// The address keeps the place (#/<chat model>/<section>) so a reload shows the same view.

import { api, path } from "./api.js";
import { currentKey, signIn, signOut } from "./auth.js";
import * as diff from "./diff.js";
import { $, clearError, fill, h, showError, weightsText } from "./dom.js";
import * as figures from "./figures.js";
import * as publish from "./publish.js";
import * as releases from "./releases.js";
import * as sessions from "./sessions.js";
import * as versions from "./versions.js";

const SECTIONS = { versions, diff, publish, releases, figures, sessions };
const DEFAULT_SECTION = "versions";

let pendingRequest = null; // set by ctx.open(), read by the section it opens
let missing = false; // the address names a chat model the server does not have

/** What every section reads, and the navigation it may ask for. */
const ctx = {
  name: null, // the selected chat model's name
  chatModel: null, // GET /v1/chat-models/{name}
  versions: [], // oldest first
  releases: [], // newest first; releases[0] is current
  section: DEFAULT_SECTION,

  get currentRelease() {
    return this.releases[0] ?? null;
  },
  get latestVersion() {
    return this.versions.length ? this.versions[this.versions.length - 1] : null;
  },

  /** Reload the chat model, its versions and releases, and redraw what depends on them. */
  async refresh() {
    const name = this.name;
    const [chatModel, versionList, releaseList] = await Promise.all([
      api("GET", path`/v1/chat-models/${name}`),
      api("GET", path`/v1/chat-models/${name}/versions`),
      api("GET", path`/v1/chat-models/${name}/releases`),
    ]);
    if (name !== this.name) return; // another chat model was selected meanwhile
    this.chatModel = chatModel;
    this.versions = [...versionList.data].sort((a, b) => a.number - b.number);
    this.releases = releaseList.data;
    renderHeader();
    for (const section of Object.values(SECTIONS)) section.render(this);
    updateSidebarEntry(chatModel);
  },

  /** Switch section (and chat model, if given); updates the address. `request` is handed
   * to the section's show(), e.g. {from: 1, to: 2} for the diff. */
  open(section, name = this.name, request = null) {
    pendingRequest = request ? { section, request } : null;
    const hash = `#/${encodeURIComponent(name)}/${section}`;
    if (window.location.hash === hash) route();
    else window.location.hash = hash;
  },
};

// ---- chat model list ---------------------------------------------------------------

let chatModels = [];
let signInNeeded = false; // the server refused the list for want of an (admin) key

/** A 401 or 403: the sign-in dialog is open and says why, so the page need not. */
function refusedKey(error) {
  return error.status === 401 || error.status === 403;
}

async function loadChatModels() {
  try {
    chatModels = (await api("GET", "/v1/chat-models")).data;
    signInNeeded = false;
    clearError("chat-models-error");
  } catch (error) {
    chatModels = [];
    signInNeeded = refusedKey(error);
    if (signInNeeded) clearError("chat-models-error");
    else showError("chat-models-error", error);
  }
  renderChatModelList();
}

function renderChatModelList() {
  const list = $("chat-model-list");
  if (signInNeeded) {
    fill(list, h("li", { class: "empty" }, "Sign in to see chat models."));
    return;
  }
  if (!chatModels.length) {
    fill(list, h("li", { class: "empty" }, "No chat models yet."));
    return;
  }
  fill(list,
    ...chatModels.map((model) => {
      const current = model.name === ctx.name;
      return h(
        "li",
        {},
        h(
          "a",
          {
            href: `#/${encodeURIComponent(model.name)}/${ctx.section}`,
            "aria-current": current ? "page" : null,
            class: current ? "current" : null,
          },
          h("span", { class: "model-name" }, model.name),
          h(
            "span",
            { class: "model-deploy" },
            weightsText(model.published_versions, "not published"),
          ),
        ),
      );
    }),
  );
}

function updateSidebarEntry(chatModel) {
  const index = chatModels.findIndex((m) => m.name === chatModel.name);
  if (index >= 0) chatModels[index] = chatModel;
  renderChatModelList();
}

async function createChatModel(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  const nameInput = $("new-chat-model-name");
  nameInput.removeAttribute("aria-invalid");
  button.disabled = true;
  try {
    const created = await api("POST", "/v1/chat-models", {
      body: {
        name: nameInput.value.trim(),
        description: $("new-chat-model-description").value,
      },
    });
    clearError("create-chat-model-error");
    form.reset();
    $("create-chat-model").open = false;
    await loadChatModels();
    ctx.open("versions", created.name);
  } catch (error) {
    if (error.field === "name") nameInput.setAttribute("aria-invalid", "true");
    showError("create-chat-model-error", error);
  } finally {
    button.disabled = false;
  }
}

// ---- one chat model ----------------------------------------------------------------

function renderHeader() {
  const model = ctx.chatModel;
  $("chat-model-title").textContent = model.name;
  $("chat-model-description").textContent = model.description || "No description.";
  $("deploy-status").textContent = weightsText(model.published_versions, "nothing published");
  $("latest-version").textContent = model.latest_version ? `v${model.latest_version}` : "—";
  const release = ctx.currentRelease;
  $("current-release-number").textContent = release ? `#${release.release}` : "—";
}

function showSection(section) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.dataset.tab === section;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !selected || missing;
  }
  ctx.section = section;
  const request = pendingRequest?.section === section ? pendingRequest.request : null;
  pendingRequest = null;
  SECTIONS[section].show?.(ctx, request);
}

/** Switch to another chat model: forget the previous one's data and show its frame. */
function beginChatModel(name) {
  ctx.name = name;
  missing = false;
  $("tabs").hidden = false;
  document.querySelector(".deploy-summary").hidden = false;
  clearError("chat-model-error");
  ctx.chatModel = null;
  ctx.versions = [];
  ctx.releases = [];
  for (const section of Object.values(SECTIONS)) section.reset?.(ctx);
  $("empty-state").hidden = true;
  $("chat-model-view").hidden = false;
  $("chat-model-title").textContent = name;
  for (const id of ["chat-model-description", "deploy-status", "latest-version"]) {
    $(id).textContent = "";
  }
  $("current-release-number").textContent = "";
}

async function loadChatModel() {
  const name = ctx.name;
  try {
    await ctx.refresh();
    clearError("chat-model-error");
  } catch (error) {
    if (name !== ctx.name) return; // another chat model was selected meanwhile
    if (error.code === "chat_model_not_found") showMissing(name);
    else if (refusedKey(error)) {
      fill($("chat-model-error"), h("p", { class: "muted" }, `Sign in to see '${name}'.`));
    } else showError("chat-model-error", error);
  }
}

/** The address names no chat model (a typo, or deleted meanwhile): say so, and offer
 * none of a chat model's sections (no "New version" for a model that is not there). */
function showMissing(name) {
  missing = true;
  $("tabs").hidden = true;
  for (const panel of document.querySelectorAll("[role=tabpanel]")) panel.hidden = true;
  document.querySelector(".deploy-summary").hidden = true;
  $("chat-model-description").textContent = "";
  fill($("chat-model-error"),
    h(
      "div",
      { class: "missing-box", role: "alert" },
      h("p", {}, h("strong", {}, `No chat model named '${name}'.`)),
      h("p", {}, "Check the address, or pick a chat model on the left (or create it there)."),
    ),
  );
}

/** Read the address (#/<name>/<section>) and show that. */
async function route() {
  const [rawName, rawSection] = window.location.hash.replace(/^#\/?/, "").split("/");
  const name = rawName ? decodeURIComponent(rawName) : null;
  const section = Object.hasOwn(SECTIONS, rawSection ?? "") ? rawSection : DEFAULT_SECTION;
  if (!name) {
    ctx.name = null;
    $("empty-state").hidden = false;
    $("chat-model-view").hidden = true;
    renderChatModelList();
    return;
  }
  if (name === ctx.name && !missing) {
    showSection(section);
    renderChatModelList();
    return;
  }
  beginChatModel(name);
  showSection(section); // the frame at once; each section waits for the data
  renderChatModelList();
  await loadChatModel();
  if (ctx.chatModel && ctx.name === name) SECTIONS[ctx.section].show?.(ctx);
}

/** Show the address again from scratch, as on a fresh load: after signing in, the chat
 * model and section the address names load now (route() alone would see the same name
 * and only switch sections, keeping what the server refused before). */
function reloadRoute() {
  ctx.name = null;
  return route();
}

function bindTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  for (const tab of tabs) {
    tab.addEventListener("click", () => ctx.open(tab.dataset.tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      next.focus();
      ctx.open(next.dataset.tab);
    });
  }
}

function start() {
  bindTabs();
  $("create-chat-model-form").addEventListener("submit", createChatModel);
  for (const section of Object.values(SECTIONS)) section.init(ctx);
  window.addEventListener("hashchange", route);
  initSignIn();
  loadChatModels().then(route);
}

function initSignIn() {
  const dialog = $("login-dialog");
  $("sign-out").hidden = !currentKey();
  window.addEventListener("chatmodel:auth-needed", (event) => {
    const { status, detail } = event.detail;
    $("login-message").textContent =
      status === 403
        ? `This key cannot manage chat models (${detail}). Sign in with an admin key.`
        : currentKey()
          ? `The server refused this key (${detail}).`
          : "This server needs an admin API key.";
    if (!dialog.open) dialog.showModal();
    $("login-key").focus();
  });
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("login-key").value;
    if (!key.trim()) return;
    signIn(key);
    try {
      await api("GET", "/v1/keys"); // an admin-only route: proves the key's scope
    } catch {
      signOut(); // the auth-needed handler has already said why
      return;
    }
    $("login-key").value = "";
    dialog.close();
    $("sign-out").hidden = false;
    await loadChatModels();
    reloadRoute();
  });
  $("sign-out").addEventListener("click", () => {
    signOut();
    window.location.reload();
  });
}

start();
