// The back office shell: sign-in, navigation, language switch and hash routing (#/orders).
import { makeApi, Session } from "/assets/common/api.js";
import { i18n, t } from "./i18n.js";
import { h, field, form, toast, errorText } from "./ui.js";
import * as products from "./views/products.js";
import * as sales from "./views/sales.js";
import * as coupons from "./views/coupons.js";
import * as pricing from "./views/pricing.js";
import * as membership from "./views/membership.js";
import * as orders from "./views/orders.js";
import * as aftersales from "./views/aftersales.js";
import * as users from "./views/users.js";
import * as reports from "./views/reports.js";
import * as audit from "./views/audit.js";

const session = new Session("mall.backoffice");
const api = makeApi(session);
const STAFF_ROLES = ["staff", "admin"];

const ROUTES = [
  ["products", "nav.products", products],
  ["sales", "nav.sales", sales],
  ["coupons", "nav.coupons", coupons],
  ["pricing", "nav.pricing", pricing],
  ["membership", "nav.membership", membership],
  ["orders", "nav.orders", orders],
  ["aftersales", "nav.aftersales", aftersales],
  ["users", "nav.users", users],
  ["reports", "nav.reports", reports],
  ["audit", "nav.audit", audit],
];

const root = document.getElementById("app");
let navOpen = false;

function route() {
  const parts = (location.hash.replace(/^#\/?/, "") || "products").split("/");
  const found = ROUTES.find(([name]) => name === parts[0]) || ROUTES[0];
  return { found, params: parts.slice(1).map(decodeURIComponent) };
}

function langButton() {
  return h("button", {
    type: "button", class: "secondary lang", "data-test": "lang",
    onclick: () => { i18n.setLang(i18n.lang === "zh" ? "en" : "zh"); render(); },
  }, t("app.lang"));
}

function signInView() {
  const login = field({ name: "login", label: t("login.login"),
    attrs: { autocomplete: "username" } });
  const password = field({ name: "password", label: t("login.password"), type: "password",
    attrs: { autocomplete: "current-password" } });
  const f = form({
    fields: [login, password], submit: t("login.submit"), className: "signin-form",
    onSubmit: async (values) => {
      const result = await api("POST", "/auth/login", { body: values });
      if (!STAFF_ROLES.includes(result.user?.role)) {
        // Not staff: the tokens are given back at once and the page refuses.
        await fetch("/api/v1/auth/logout", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: result.tokens.refresh_token }),
        }).catch(() => null);
        const err = new Error(t("login.not_staff"));
        err.code = "not_staff";
        throw err;
      }
      session.set({ ...result.tokens, user: result.user });
      return result;
    },
    success: () => { setTimeout(render, 0); return ""; },
  });
  return h("div", { class: "signin" },
    h("div", { class: "signin-top" }, langButton()),
    h("section", { class: "card signin-card" },
      h("h1", {}, t("app.title")), h("h2", {}, t("login.title")), f.el));
}

async function signOut() {
  const tokens = session.get();
  if (tokens?.refresh_token) {
    await api("POST", "/auth/logout", { body: { refresh_token: tokens.refresh_token } })
      .catch(() => null);
  }
  session.clear();
  toast("ok", t("login.signed_out"));
  location.hash = "#/products";
  render();
}

function shell(current) {
  const user = session.get()?.user || {};
  const nav = h("nav", { class: `nav ${navOpen ? "open" : ""}`, "aria-label": t("app.menu") },
    h("ul", {}, ROUTES.map(([name, key]) => h("li", {}, h("a", {
      href: `#/${name}`, "aria-current": name === current ? "page" : null,
      onclick: () => { navOpen = false; },
    }, t(key))))));
  const toggle = h("button", {
    type: "button", class: "secondary menu-toggle", "aria-expanded": String(navOpen),
    onclick: () => {
      navOpen = !navOpen;
      nav.classList.toggle("open", navOpen);
      toggle.setAttribute("aria-expanded", String(navOpen));
    },
  }, t("app.menu"));
  const main = h("main", { id: "view", tabindex: "-1" });
  const header = h("header", { class: "topbar" },
    toggle,
    h("a", { class: "brand", href: "#/products" }, t("app.title")),
    h("span", { class: "who muted", "data-test": "who" },
      t("app.signed_in_as", { who: user.email || user.phone || user.user_id || "",
        role: t(`role.${user.role}`) })),
    langButton(),
    h("button", { type: "button", class: "secondary", onclick: signOut }, t("app.signout")));
  return { el: h("div", { class: "layout" }, header, h("div", { class: "body" }, nav, main)),
    main };
}

let renderSeq = 0;
async function render() {
  document.documentElement.lang = i18n.lang === "zh" ? "zh-CN" : "en";
  document.title = t("app.title");
  if (!session.signedIn) {
    root.replaceChildren(signInView());
    return;
  }
  const { found, params } = route();
  const [name, , view] = found;
  const { el, main } = shell(name);
  root.replaceChildren(el);
  window.scrollTo(0, 0);
  const seq = ++renderSeq;
  const ctx = {
    api, session, t, user: session.get()?.user || {}, params,
    go: (hash) => { location.hash = hash; },
    stale: () => seq !== renderSeq,
  };
  try {
    await view.render(ctx, main);
  } catch (err) {
    if (err?.status === 401) { session.clear(); render(); return; }
    main.append(h("div", { class: "notice error", role: "alert" }, errorText(err)));
  }
}

window.addEventListener("hashchange", render);
render();
