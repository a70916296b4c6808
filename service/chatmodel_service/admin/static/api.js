// Every request the admin page makes goes through api(): it adds the admin key (see
// auth.js) and turns 401/403 answers into a sign-in prompt.

import { announceAuthNeeded, currentKey } from "./auth.js";

/** An error answer from the server: {error, detail, field} plus the HTTP status. */
export class ApiError extends Error {
  constructor(status, body) {
    const detail = typeof body?.detail === "string" ? body.detail : `HTTP ${status}`;
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = body?.error ?? "http_error";
    this.detail = detail;
    this.field = body?.field ?? null;
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
  }
}

/** A path with every interpolated value URL-encoded: path`/v1/chat-models/${name}`. */
export function path(strings, ...values) {
  return strings.reduce(
    (out, piece, i) => out + piece + (i < values.length ? encodeURIComponent(values[i]) : ""),
    "",
  );
}

/**
 * Call the REST API and return the decoded JSON body.
 * Throws ApiError for an error answer and for a server that cannot be reached.
 */
export async function api(method, url, { query, body } = {}) {
  const target = new URL(url, window.location.origin);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") {
      target.searchParams.set(key, String(value));
    }
  }
  const init = { method, headers: { accept: "application/json" }, credentials: "omit" };
  const key = currentKey();
  if (key) init.headers.authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(target, init);
  } catch (error) {
    throw new ApiError(0, {
      error: "network_error",
      detail: `The server could not be reached (${error.message}).`,
    });
  }
  const text = await response.text();
  let decoded = null;
  if (text) {
    try {
      decoded = JSON.parse(text);
    } catch {
      decoded = null;
    }
  }
  if (response.status === 401 || response.status === 403) {
    announceAuthNeeded(response.status, decoded?.detail ?? response.statusText);
  }
  if (!response.ok) {
    throw new ApiError(
      response.status,
      decoded ?? { error: "http_error", detail: text.slice(0, 300) || response.statusText },
    );
  }
  if (decoded === null && text) {
    throw new ApiError(response.status, {
      error: "invalid_response",
      detail: "The server answered something that is not JSON.",
    });
  }
  return decoded;
}
