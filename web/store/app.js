// The storefront: a single page with hash routes (#/product/12). Every string goes through
// the zh/en dictionary; DOM is built with h() so API text is never parsed as HTML.
import { makeApi, Session, newKey, money, h } from "/assets/common/api.js";
import { makeI18n } from "/assets/common/i18n.js";
import { DICT } from "./dict.js";
import * as shop from "./pages/shop.js";
import * as account from "./pages/account.js";
import * as orders from "./pages/orders.js";
import * as sale from "./pages/sale.js";
import * as afterSales from "./pages/aftersales.js";

const session = new Session("mall.store.session");
const api = makeApi(session);
const i18n = makeI18n(DICT);
const t = i18n.t;
i18n.setLang(i18n.lang);

// Timers and pollers of the current screen; cleared on every navigation.
let cleanups = [];
function onLeave(fn) { cleanups.push(fn); }
function every(ms, fn) { const id = setInterval(fn, ms); onLeave(() => clearInterval(id)); return id; }

function notify(kind, text) {
  const area = document.getElementById("toasts");
  const el = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  area.append(el);
  while (area.children.length > 3) area.firstElementChild.remove();
  setTimeout(() => el.remove(), kind === "error" ? 6000 : 3500);
}

// A friendly zh/en text for a refused call: known codes from the dictionary, else the API's message.
function errText(err) {
  if (!err) return t("err.unknown");
  const key = `err.${err.code}`;
  if (DICT[key]) {
    return t(key, { retry: err.retryAfter || err.details?.retry_after_s || 1 });
  }
  if (err.status >= 500) return t("err.server");
  return err.message || t("err.unknown");
}

// Runs an action with the button busy (disabled, label "…"), and reports success or failure.
async function busy(button, fn, { ok } = {}) {
  const label = button ? button.textContent : "";
  if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); button.textContent = t("busy"); }
  try {
    const result = await fn();
    if (ok) notify("ok", ok);
    return result;
  } catch (err) {
    notify("error", errText(err));
    return undefined;
  } finally {
    if (button && button.isConnected) {
      button.disabled = false; button.removeAttribute("aria-busy"); button.textContent = label;
    }
  }
}

function go(hash) {
  if (location.hash === hash) render(); else location.hash = hash;
}

function requireSignIn() {
  if (session.signedIn) return true;
  go(`#/login?next=${encodeURIComponent(location.hash || "#/")}`);
  return false;
}

const ctx = {
  api, session, i18n, t, h, money, newKey, notify, errText, busy, go, onLeave, every,
  requireSignIn, rerender: () => render(),
};

const routes = [
  [/^\/?$/, (m, q) => shop.home(ctx, q)],
  [/^\/search$/, (m, q) => shop.search(ctx, q)],
  [/^\/product\/(\d+)$/, (m, q) => shop.product(ctx, Number(m[1]), q)],
  [/^\/sale\/(\d+)$/, (m) => sale.salePage(ctx, Number(m[1]))],
  [/^\/cart$/, () => shop.cart(ctx)],
  [/^\/checkout$/, () => shop.checkout(ctx)],
  [/^\/orders$/, (m, q) => orders.list(ctx, q)],
  [/^\/order\/([A-Za-z0-9_.:-]+)$/, (m) => orders.detail(ctx, m[1])],
  [/^\/login$/, (m, q) => account.login(ctx, q)],
  [/^\/signup$/, (m, q) => account.signup(ctx, q)],
  [/^\/account$/, () => account.profile(ctx)],
  [/^\/addresses$/, () => account.addresses(ctx)],
  [/^\/coupons$/, () => account.coupons(ctx)],
  [/^\/points$/, () => account.points(ctx)],
  [/^\/after-sales$/, (m, q) => afterSales.mine(ctx, q)],
];

function header() {
  const top = document.getElementById("top");
  const form = h("form", { class: "searchbar", role: "search" },
    h("input", { type: "search", name: "q", "aria-label": t("search.placeholder"),
                 placeholder: t("search.placeholder"), id: "top-q" }),
    h("button", { type: "submit" }, t("search.go")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = form.q.value.trim();
    go(`#/search?q=${encodeURIComponent(q)}`);
  });
  const other = i18n.lang === "zh" ? "en" : "zh";
  const lang = h("button", { type: "button", class: "secondary lang", "data-test": "lang",
                             "aria-label": t("lang.switch") }, t("lang.other"));
  lang.addEventListener("click", () => { i18n.setLang(other); render(); });
  const signed = session.signedIn;
  const nav = h("nav", { class: "nav", "aria-label": t("nav.main") },
    h("a", { href: "#/" }, t("nav.home")),
    h("a", { href: "#/search" }, t("nav.search")),
    h("a", { href: "#/cart" }, t("nav.cart")),
    h("a", { href: "#/orders" }, t("nav.orders")),
    signed ? h("a", { href: "#/account" }, t("nav.account"))
      : h("a", { href: "#/login" }, t("nav.login")),
    lang);
  const current = `#${(location.hash || "#/").slice(1).split("?")[0]}`;
  for (const a of nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === current) a.setAttribute("aria-current", "page");
  }
  top.replaceChildren(
    h("div", { class: "top-inner" },
      h("a", { href: "#/", class: "brand" }, t("brand")), form, nav));
}

let generation = 0;
async function render() {
  const mine = ++generation;
  for (const fn of cleanups) { try { fn(); } catch { /* ignore */ } }
  cleanups = [];
  document.title = t("brand");
  header();
  const raw = (location.hash || "#/").slice(1);
  const [path, qs] = raw.split("?");
  const query = new URLSearchParams(qs || "");
  const view = document.getElementById("app");
  for (const [re, fn] of routes) {
    const m = path.match(re);
    if (!m) continue;
    view.replaceChildren(h("p", { class: "muted" }, t("loading")));
    try {
      const node = await fn(m, query);
      if (node && mine === generation) view.replaceChildren(node);
    } catch (err) {
      if (mine !== generation) return;
      if (err?.status === 401) { session.clear(); go(`#/login?next=${encodeURIComponent("#" + raw)}`); return; }
      view.replaceChildren(h("div", { class: "notice error", role: "alert" }, errText(err)));
    }
    return;
  }
  view.replaceChildren(h("div", { class: "card" }, h("h1", {}, t("notfound")),
    h("a", { href: "#/" }, t("nav.home"))));
}

window.addEventListener("hashchange", render);
render();
