// The one JSON API client of the storefront and the back office.
// Every call goes to /api/v1 with the signed-in user's bearer token; a 401 refreshes the
// session once; a refused call throws ApiFailure carrying the API's error code and message.

export class ApiFailure extends Error {
  constructor(status, code, message, details) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || `http_${status}`;
    this.details = details || {};
  }
}

// A session lives in localStorage under its own name: the storefront and the back office
// keep separate sign-ins in one browser.
export class Session {
  constructor(name) { this.name = name; }
  get() {
    try { return JSON.parse(localStorage.getItem(this.name)) || null; } catch { return null; }
  }
  set(tokens) { localStorage.setItem(this.name, JSON.stringify(tokens)); }
  clear() { localStorage.removeItem(this.name); }
  get signedIn() { return Boolean(this.get()?.access_token); }
}

// A fresh Idempotency-Key: one per user action, reused by that action's retries.
export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function makeApi(session) {
  async function send(method, path, body, headers) {
    const h = { Accept: "application/json", ...headers };
    const tokens = session.get();
    if (tokens?.access_token) h.Authorization = `Bearer ${tokens.access_token}`;
    if (body !== undefined) h["Content-Type"] = "application/json";
    return fetch(`/api/v1${path}`, {
      method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async function refresh() {
    const tokens = session.get();
    if (!tokens?.refresh_token) return false;
    const resp = await fetch("/api/v1/auth/refresh", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: tokens.refresh_token }),
    });
    if (!resp.ok) { session.clear(); return false; }
    session.set({ ...tokens, ...(await resp.json()).tokens });
    return true;
  }

  // api(method, path, {body, key, headers}) -> parsed JSON (or null); throws ApiFailure.
  return async function api(method, path, { body, key, headers } = {}) {
    const extra = { ...headers };
    if (key) extra["Idempotency-Key"] = key;
    let resp;
    try {
      resp = await send(method, path, body, extra);
      if (resp.status === 401 && session.get()?.refresh_token && await refresh()) {
        resp = await send(method, path, body, extra);
      }
    } catch (err) {
      throw new ApiFailure(0, "network", String(err.message || err));
    }
    const text = await resp.text();
    let data = null;
    if (text) { try { data = JSON.parse(text); } catch { data = text; } }
    if (!resp.ok) {
      const e = data?.error || {};
      const failure = new ApiFailure(resp.status, e.code, e.message, e.details);
      failure.retryAfter = Number(resp.headers.get("Retry-After")) || 0;
      throw failure;
    }
    return data;
  };
}

// Money is integer fen in the API; shown as yuan with two decimals.
export function money(fen) {
  return `¥${(Number(fen || 0) / 100).toFixed(2)}`;
}

// Builds DOM without innerHTML: h("a", {href: "#/"}, "text", child...). Text is never parsed
// as HTML, so names and messages from the API cannot inject markup.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}
