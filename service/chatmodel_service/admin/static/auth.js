// The admin key: kept in this tab's sessionStorage and sent only as an Authorization
// header by api(). The page uses no cookies, so another site cannot make the browser send
// an authenticated request (no CSRF surface), and closing the tab forgets the key.

const STORAGE_KEY = "chatmodel-admin-key";

export function currentKey() {
  return window.sessionStorage.getItem(STORAGE_KEY);
}

export function signIn(key) {
  window.sessionStorage.setItem(STORAGE_KEY, key.trim());
}

export function signOut() {
  window.sessionStorage.removeItem(STORAGE_KEY);
}

/** Tell the page the server wants a (better) key: it opens the sign-in dialog. */
export function announceAuthNeeded(status, detail) {
  window.dispatchEvent(new CustomEvent("chatmodel:auth-needed", { detail: { status, detail } }));
}
