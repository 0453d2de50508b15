// Flash sales: the cards of the home page and the sale page with the buy button.
// The button is disabled with a countdown until the start; one click sends exactly one
// request with an Idempotency-Key; a retry after a network error reuses the same key (and
// the same admission token); a queued order is followed until it is persisted.
import { payButton } from "./orders.js";

export function countdownText(t, ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400);
  const hh = String(Math.floor((s % 86400) / 3600)).padStart(2, "0");
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return d > 0 ? t("time.dhms", { d, h: hh, m: mm, s: ss }) : `${hh}:${mm}:${ss}`;
}

// The server's clock, from the Date header of the sale's answer (1 s resolution): only a
// skew of more than a second is corrected, so the button opens when the server opens.
let skewMs = 0;
export function serverNow() { return Date.now() + skewMs; }

async function loadSale(ctx, saleId) {
  const sent = Date.now();
  const resp = await fetch(`/api/v1/flash-sales/${saleId}`, { headers: { Accept: "application/json" } });
  const received = Date.now();
  const date = Date.parse(resp.headers.get("Date") || "");
  if (!Number.isNaN(date)) {
    const skew = date + 500 - (sent + received) / 2;
    skewMs = Math.abs(skew) > 1500 ? skew : 0;
  }
  if (!resp.ok) {
    const err = new Error("sale"); err.status = resp.status;
    err.code = resp.status === 404 ? "not_found" : `http_${resp.status}`;
    throw err;
  }
  return resp.json();
}

function stateOf(sale, now) {
  const start = Date.parse(sale.starts_at);
  const end = Date.parse(sale.ends_at);
  if (now >= end) return "ended";
  if (now < start) return "upcoming";
  if (sale.remaining <= 0 || sale.state === "sold_out") return "sold_out";
  return "live";
}

// A card on the home page; its countdown ticks with the page's timer.
export function saleCard(ctx, sale) {
  const { h, t, money } = ctx;
  const timer = h("span", { class: "countdown" });
  const badge = h("span", { class: "badge" });
  const left = h("span", { "data-test": "remaining" }, t("sale.remaining", { n: sale.remaining }));
  const tick = () => {
    left.textContent = t("sale.remaining", { n: sale.remaining });
    const now = serverNow();
    const state = stateOf(sale, now);
    badge.textContent = t(`sale.state.${state}`);
    badge.className = `badge ${state}`;
    if (state === "upcoming") timer.textContent = t("sale.startsIn", { time: countdownText(t, Date.parse(sale.starts_at) - now) });
    else if (state === "live") timer.textContent = t("sale.endsIn", { time: countdownText(t, Date.parse(sale.ends_at) - now) });
    else timer.textContent = "";
  };
  tick();
  ctx.every(1000, tick);
  const card = h("a", { class: "card sale-card", href: `#/sale/${sale.id}`, "data-sale": sale.id },
    h("div", { class: "sale-head" }, badge, timer),
    h("h3", {}, sale.product_name || t("sale.title", { id: sale.id })),
    h("div", {}, h("span", { class: "price big" }, money(sale.price))),
    h("div", { class: "muted" }, left, " · ", t("sale.limit", { n: sale.per_user_limit })));
  // The home page refreshes the list and hands each card its new figures.
  card.updateSale = (next) => { sale = { ...sale, ...next }; tick(); };
  return card;
}

export async function salePage(ctx, saleId) {
  const { api, h, t, money, newKey, session } = ctx;
  let sale = await loadSale(ctx, saleId);
  const name = h("h1", {}, t("sale.title", { id: saleId }));
  // The public sale view has only the SKU; the public list carries the product's name.
  api("GET", "/flash-sales?limit=100").then((page) => {
    const found = (page.items || []).find((s) => s.id === saleId);
    if (found?.product_name) name.textContent = found.product_name;
  }).catch(() => {});

  const badge = h("span", { class: "badge" });
  const timer = h("span", { class: "countdown", "data-test": "countdown" });
  const remaining = h("span", { "data-test": "remaining" });
  const button = h("button", { type: "button", class: "buy big", "data-test": "flash-buy", disabled: true }, t("sale.buy"));
  // The latest click's answer, and below it the order the last accepted click created (a
  // later click, e.g. rate limited, never hides that order).
  const clickNote = h("div", { "data-test": "flash-click" });
  const orderNote = h("div", { "data-test": "flash-order" });
  const result = h("div", { "data-test": "flash-result", "aria-live": "polite" }, clickNote, orderNote);

  // One purchase attempt: its key and admission token survive retries of the same click.
  let attempt = null;
  let inFlight = false;
  let done = false;
  let blockedUntil = 0;
  // Units this page bought: the button stays open until the per-user limit is reached.
  let bought = 0;
  let following = 0;

  function notice(kind, text, extra) {
    return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text, ...extra);
  }
  function show(kind, text, ...extra) { clickNote.replaceChildren(notice(kind, text, extra)); }
  function showOrder(kind, text, ...extra) { orderNote.replaceChildren(notice(kind, text, extra)); }

  function refreshButton() {
    const now = serverNow();
    const state = stateOf(sale, now);
    badge.textContent = t(`sale.state.${state}`);
    badge.className = `badge ${state}`;
    remaining.textContent = t("sale.remaining", { n: sale.remaining });
    if (state === "upcoming") {
      timer.textContent = t("sale.startsIn", { time: countdownText(t, Date.parse(sale.starts_at) - now) });
    } else if (state === "live") {
      timer.textContent = t("sale.endsIn", { time: countdownText(t, Date.parse(sale.ends_at) - now) });
    } else timer.textContent = "";
    if (inFlight) return;
    if (done) { button.disabled = true; return; }
    if (Date.now() < blockedUntil) {
      button.disabled = true;
      button.textContent = t("sale.retryIn", { n: Math.ceil((blockedUntil - Date.now()) / 1000) });
      return;
    }
    button.textContent = state === "upcoming" ? t("sale.notStarted")
      : state === "sold_out" ? t("sale.soldOutBtn") : state === "ended" ? t("sale.endedBtn") : t("sale.buy");
    button.disabled = state !== "live";
  }

  async function poll() {
    try {
      sale = await loadSale(ctx, saleId);
    } catch { /* keep the last view */ }
    refreshButton();
  }

  async function followOrder(orderId) {
    const mine = ++following;
    showOrder("info", t("sale.queued"));
    for (let i = 0; i < 120; i += 1) {
      if (!result.isConnected || mine !== following) return;
      try {
        const order = await api("GET", `/orders/${encodeURIComponent(orderId)}`);
        if (order.status !== "queued") {
          const link = h("a", { href: `#/order/${orderId}`, "data-test": "order-link" }, t("order.view"));
          if (order.status === "pending_payment" && !order.address) {
            // A flash-sale order carries no address: the order page asks for one, then pays.
            showOrder("ok", t("sale.needsAddress"), " ", h("a", { class: "button", href: `#/order/${orderId}`,
              "data-test": "choose-address" }, t("sale.chooseAddress")));
          } else if (order.status === "pending_payment") {
            showOrder("ok", t("sale.persisted", { total: money(order.total) }), " ",
              payButton(ctx, order, () => ctx.go(`#/order/${orderId}`)), " ", link);
          } else {
            showOrder("ok", t(`status.${order.status}`), " ", link);
          }
          return;
        }
      } catch { /* the order view may lag; keep following */ }
      await new Promise((r) => setTimeout(r, 500));
    }
    showOrder("info", t("sale.stillQueued"), " ", h("a", { href: `#/order/${orderId}` }, t("order.view")));
  }

  async function buy() {
    if (inFlight || done) return;
    if (!session.signedIn) {
      show("error", t("err.unauthorized"), " ",
        h("a", { href: `#/login?next=${encodeURIComponent(`#/sale/${saleId}`)}` }, t("nav.login")));
      return;
    }
    inFlight = true;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.textContent = t("sale.sending");
    if (!attempt) attempt = { key: newKey(), token: null };
    try {
      if (sale.requires_token && !attempt.token) {
        const issued = await api("POST", `/flash-sales/${saleId}/admission-token`);
        attempt.token = issued.token;
      }
      const headers = attempt.token ? { "X-Admission-Token": attempt.token } : {};
      const answer = await api("POST", `/flash-sales/${saleId}/orders`,
        { body: { qty: 1 }, key: attempt.key, headers });
      bought += 1;
      done = bought >= (sale.per_user_limit || 1);
      attempt = null;
      inFlight = false;
      clickNote.replaceChildren();
      button.textContent = t("sale.bought");
      button.removeAttribute("aria-busy");
      followOrder(answer.order_id);
      poll();
      return;
    } catch (err) {
      const code = err.code;
      if (code === "network" || err.status >= 500) {
        // The request may have been accepted: the same key on the next click replays it.
        show("error", t("sale.networkRetry"));
      } else if (code === "rate_limited") {
        const secs = Number(err.retryAfter || err.details?.retry_after_s || 1);
        blockedUntil = Date.now() + secs * 1000;
        show("error", t("err.rate_limited", { retry: secs }));
      } else if (code === "admission_token_invalid" || code === "admission_token_required") {
        attempt = null;
        show("error", t(`err.${code}`));
      } else if (code === "unauthorized") {
        attempt = null;
        show("error", t("err.unauthorized"), " ",
          h("a", { href: `#/login?next=${encodeURIComponent(`#/sale/${saleId}`)}` }, t("nav.login")));
      } else {
        attempt = null;
        if (code === "sold_out") sale = { ...sale, remaining: 0, state: "sold_out" };
        if (code === "limit_reached" || code === "ended") done = true;
        show("error", ctx.errText(err));
      }
    } finally {
      inFlight = false;
      button.removeAttribute("aria-busy");
    }
    refreshButton();
  }

  button.addEventListener("click", buy);
  refreshButton();
  ctx.every(250, refreshButton);
  ctx.every(3000, poll);

  return h("section", { class: "card sale-page", "data-sale": saleId },
    name,
    h("div", { class: "sale-head" }, badge, timer),
    h("div", { class: "price-row" },
      h("span", { class: "price big", "data-test": "sale-price" }, money(sale.price)),
      h("span", { class: "muted" }, t("sale.limit", { n: sale.per_user_limit }))),
    h("p", {}, remaining),
    sale.requires_token ? h("p", { class: "muted" }, t("sale.tokenNote")) : null,
    h("p", { class: "muted" }, t("sale.window", {
      from: new Date(sale.starts_at).toLocaleString(ctx.i18n.lang === "zh" ? "zh-CN" : "en"),
      to: new Date(sale.ends_at).toLocaleString(ctx.i18n.lang === "zh" ? "zh-CN" : "en") })),
    button,
    result);
}
