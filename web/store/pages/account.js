// Accounts: sign-up, log-in, log-out, profile, addresses, coupons, points and check-in.
import { addressForm, addressText, couponRule } from "./shop.js";

function nextOf(query) {
  const next = query.get("next") || "#/";
  return next.startsWith("#/") && !next.startsWith("#/login") && !next.startsWith("#/signup") ? next : "#/";
}

export async function login(ctx, query) {
  const { h, t, api, session, busy } = ctx;
  const form = h("form", { class: "card narrow", "data-test": "login-form" },
    h("h1", {}, t("auth.login")),
    h("label", {}, t("auth.loginId"), h("input", { name: "login", required: true, autocomplete: "username" })),
    h("label", {}, t("auth.password"), h("input", { name: "password", type: "password", required: true, autocomplete: "current-password" })),
    h("button", { type: "submit" }, t("auth.login")),
    h("p", {}, t("auth.noAccount"), " ", h("a", { href: `#/signup?next=${encodeURIComponent(nextOf(query))}` }, t("auth.signup"))));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(form.querySelector("button"), async () => {
      const answer = await api("POST", "/auth/login", { body: { login: form.login.value.trim(), password: form.password.value } });
      session.set({ ...answer.tokens, user: answer.user });
      ctx.notify("ok", t("auth.welcome", { name: answer.user.nickname || answer.user.email || answer.user.phone || "" }));
      ctx.go(nextOf(query));
    });
  });
  return form;
}

export async function signup(ctx, query) {
  const { h, t, api, session, busy } = ctx;
  const form = h("form", { class: "card narrow", "data-test": "signup-form" },
    h("h1", {}, t("auth.signup")),
    h("label", {}, t("auth.loginId"), h("input", { name: "login", required: true, autocomplete: "username" })),
    h("label", {}, t("auth.nickname"), h("input", { name: "nickname", maxlength: 50 })),
    h("label", {}, t("auth.password"), h("input", { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" })),
    h("p", { class: "muted small" }, t("auth.passwordHint")),
    h("button", { type: "submit" }, t("auth.signup")),
    h("p", {}, t("auth.haveAccount"), " ", h("a", { href: `#/login?next=${encodeURIComponent(nextOf(query))}` }, t("auth.login"))));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = form.login.value.trim();
    const body = { password: form.password.value };
    if (id.includes("@")) body.email = id; else body.phone = id;
    if (form.nickname.value.trim()) body.nickname = form.nickname.value.trim();
    busy(form.querySelector("button"), async () => {
      const answer = await api("POST", "/auth/register", { body });
      session.set({ ...answer.tokens, user: answer.user });
      ctx.notify("ok", t("auth.created"));
      ctx.go(nextOf(query));
    });
  });
  return form;
}

export function accountNav(ctx, active) {
  const { h, t } = ctx;
  return h("nav", { class: "tabs", "aria-label": t("nav.account") },
    [["account", "acc.profile"], ["addresses", "acc.addresses"], ["coupons", "acc.coupons"], ["points", "acc.points"], ["after-sales", "acc.afterSales"], ["orders", "nav.orders"]]
      .map(([r, k]) => h("a", { href: `#/${r}`, class: r === active ? "active" : "", "aria-current": r === active ? "page" : false }, t(k))));
}

export async function profile(ctx) {
  const { h, t, api, session, busy } = ctx;
  if (!ctx.requireSignIn()) return null;
  const [me, member] = await Promise.all([api("GET", "/me"), api("GET", "/me/membership").catch(() => null)]);
  const form = h("form", { class: "card" },
    h("h2", {}, t("acc.profile")),
    h("p", { "data-test": "me-login" }, me.email || me.phone || me.user_id),
    h("label", {}, t("auth.nickname"), h("input", { name: "nickname", maxlength: 50, value: me.nickname || "" })),
    h("button", { type: "submit" }, t("acc.save")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(form.querySelector("button"), () => api("PATCH", "/me", { body: { nickname: form.nickname.value.trim() } }), { ok: t("acc.saved") });
  });
  const logout = h("button", { type: "button", class: "secondary", "data-test": "logout" }, t("auth.logout"));
  logout.addEventListener("click", () => busy(logout, async () => {
    const refresh = session.get()?.refresh_token;
    try { if (refresh) await api("POST", "/auth/logout", { body: { refresh_token: refresh } }); } finally {
      session.clear();
    }
    ctx.notify("ok", t("auth.loggedOut"));
    ctx.go("#/");
  }));
  return h("section", {},
    h("h1", {}, t("nav.account")),
    accountNav(ctx, "account"),
    member ? h("div", { class: "card" },
      h("h2", {}, t("acc.member")),
      h("p", {}, t("acc.level", { level: member.level, name: member.name }), " · ", t("acc.spent", { spent: ctx.money(member.spent) })),
      member.next_level ? h("p", { class: "muted small" }, t("acc.next", { name: member.next_level.name, missing: ctx.money(member.next_level.missing) })) : null,
      h("p", {}, t("acc.pointsBal", { n: member.points }), " ", h("a", { href: "#/points" }, t("acc.points")))) : null,
    form, logout);
}

export async function addresses(ctx) {
  const { h, t, api, busy } = ctx;
  if (!ctx.requireSignIn()) return null;
  const list = await api("GET", "/me/addresses");
  const items = list.items || list || [];
  const reload = () => ctx.rerender();
  return h("section", {},
    h("h1", {}, t("acc.addresses")),
    accountNav(ctx, "addresses"),
    items.length ? items.map((a) => {
      const def = h("button", { type: "button", class: "secondary" }, t("addr.makeDefault"));
      def.addEventListener("click", () => busy(def, async () => { await api("POST", `/me/addresses/${a.id}/default`); reload(); }, { ok: t("acc.saved") }));
      const del = h("button", { type: "button", class: "secondary" }, t("addr.delete"));
      del.addEventListener("click", () => busy(del, async () => { await api("DELETE", `/me/addresses/${a.id}`); reload(); }, { ok: t("addr.deleted") }));
      return h("div", { class: "card addr-row", "data-address": a.id },
        h("div", { class: "grow" }, addressText(a), a.is_default ? [" ", h("span", { class: "badge live" }, t("addr.default"))] : null),
        h("div", { class: "actions" }, a.is_default ? null : def, del));
    }) : h("p", { class: "card muted" }, t("addr.none")),
    h("div", { class: "card" }, addressForm(ctx, reload)));
}

export async function coupons(ctx) {
  const { h, t, api, busy, newKey } = ctx;
  if (!ctx.requireSignIn()) return null;
  const [mine, claimable] = await Promise.all([api("GET", "/me/coupons"), api("GET", "/coupons")]);
  const reload = () => ctx.rerender();
  return h("section", {},
    h("h1", {}, t("acc.coupons")),
    accountNav(ctx, "coupons"),
    h("h2", {}, t("coupon.claimable")),
    claimable.items.length ? h("div", { class: "grid coupons" }, claimable.items.map((c) => {
      const key = newKey();
      const b = h("button", { type: "button", "data-claim": c.id }, t("coupon.claim"));
      b.addEventListener("click", () => busy(b, async () => { await api("POST", `/coupons/${c.id}/claim`, { key }); reload(); }, { ok: t("coupon.claimed") }));
      return h("div", { class: "card coupon" }, h("strong", {}, c.name), h("div", {}, couponRule(ctx, c)),
        h("div", { class: "muted small" }, t("coupon.remaining", { n: c.remaining })), b);
    })) : h("p", { class: "card muted" }, t("coupon.noneClaimable")),
    h("h2", {}, t("coupon.mine")),
    mine.items.length ? h("div", { class: "grid coupons" }, mine.items.map((c) => h("div", { class: "card coupon", "data-coupon": c.id },
      h("strong", {}, c.rules.name), h("div", {}, couponRule(ctx, c.rules)),
      h("div", { class: "muted small" }, t(`coupon.state.${c.state}`), " · ", t("coupon.until", { d: new Date(c.rules.valid_until).toLocaleDateString(ctx.i18n.lang === "zh" ? "zh-CN" : "en") })))))
      : h("p", { class: "card muted" }, t("coupon.noneMine")));
}

export async function points(ctx) {
  const { h, t, api, busy } = ctx;
  if (!ctx.requireSignIn()) return null;
  const ledger = await api("GET", "/me/points?limit=20");
  const checkin = h("button", { type: "button", "data-test": "checkin" }, t("points.checkin"));
  checkin.addEventListener("click", () => busy(checkin, async () => {
    const r = await api("POST", "/me/checkin");
    ctx.notify("ok", t("points.checkedIn", { points: r.points, streak: r.streak }));
    ctx.rerender();
  }));
  return h("section", {},
    h("h1", {}, t("acc.points")),
    accountNav(ctx, "points"),
    h("div", { class: "card" }, h("p", { class: "big" }, t("acc.pointsBal", { n: ledger.balance }), " "), checkin),
    h("div", { class: "card" }, h("h2", {}, t("points.ledger")),
      ledger.items.length ? h("table", {}, h("tbody", {}, ledger.items.map((e) => h("tr", {},
        h("td", {}, new Date(e.created_at).toLocaleString(ctx.i18n.lang === "zh" ? "zh-CN" : "en")),
        h("td", {}, t(`points.reason.${e.reason}`) === `points.reason.${e.reason}` ? e.reason : t(`points.reason.${e.reason}`)),
        h("td", { class: e.delta >= 0 ? "plus" : "minus" }, e.delta >= 0 ? `+${e.delta}` : String(e.delta))))))
        : h("p", { class: "muted" }, t("points.none"))));
}
