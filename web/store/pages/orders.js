// Orders: the list, one order with its status history, the shipping address of a flash-sale
// order (chosen before paying), payment through the sandbox provider, cancel, confirm receipt,
// and the order's after-sales requests.
import { addressForm, addressText } from "./shop.js";

// The outcome of the last cancel / confirm receipt, kept across the reload that follows it.
const lastAction = new Map();

function when(ctx, iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(ctx.i18n.lang === "zh" ? "zh-CN" : "en");
}

// One click: opens a sandbox payment (same key on retry) and pays it through the sandbox.
export function payButton(ctx, order, after) {
  const { h, t, api, newKey, busy } = ctx;
  const key = newKey();
  const button = h("button", { type: "button", "data-test": "pay" }, t("pay.sandbox", { total: ctx.money(order.total) }));
  button.addEventListener("click", () => busy(button, async () => {
    const payment = await api("POST", `/orders/${encodeURIComponent(order.order_id)}/payments`,
      { body: { provider: "sandbox" }, key });
    await api("POST", `/sandbox/pay/${encodeURIComponent(payment.payment_id)}`);
    ctx.notify("ok", t("pay.done"));
    if (after) after();
  }));
  return button;
}

// Order lines carry the product's name and the SKU's attributes.
function itemName(ctx, it) {
  const name = it.product_name || ctx.t("order.sku", { sku: it.sku_id });
  const attrs = Object.entries(it.attributes || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  return attrs ? `${name} (${attrs})` : name;
}

// A flash-sale order is placed without an address: the buyer picks one before paying.
function needsAddress(order) {
  return Boolean(order.sale_id) && !order.address
    && (order.status === "pending_payment" || order.status === "paid");
}

async function addressChooser(ctx, order, after) {
  const { h, t, api, busy } = ctx;
  const page = await api("GET", "/me/addresses");
  const addresses = page.items || page || [];
  let addressId = (addresses.find((a) => a.is_default) || addresses[0])?.id;
  const list = h("div", { class: "addr-list", role: "radiogroup", "aria-label": t("co.address") });
  const use = h("button", { type: "button", "data-test": "set-address" }, t("order.useAddress"));
  function draw() {
    list.replaceChildren(...addresses.map((a) => {
      const input = h("input", { type: "radio", name: "order-address", value: a.id, checked: a.id === addressId });
      input.addEventListener("change", () => { addressId = a.id; });
      return h("label", { class: "check addr" }, input, addressText(a));
    }));
    if (!addresses.length) list.append(h("p", { class: "muted" }, t("addr.none")));
    use.disabled = !addresses.length;
  }
  draw();
  const newAddr = addressForm(ctx, (saved) => {
    addresses.unshift(saved); addressId = saved.id; draw();
    newAddr.reset(); details.open = false;
  });
  const details = h("details", { open: !addresses.length }, h("summary", {}, t("addr.add")), newAddr);
  use.addEventListener("click", () => busy(use, async () => {
    await api("PUT", `/orders/${encodeURIComponent(order.order_id)}/address`, { body: { address_id: addressId } });
    after();
  }, { ok: t("order.addressSet") }));
  return h("div", { class: "card", "data-test": "order-address" },
    h("h2", {}, t("order.addressTitle")),
    h("p", { class: "notice info", role: "status" }, t("order.addressNeeded")),
    list, details, h("div", { class: "actions" }, use));
}

// The buyer's after-sales requests on this order, newest first, with the staff's note.
async function afterSalesList(ctx, orderId) {
  const { h, t, api } = ctx;
  let page = { items: [] };
  try { page = await api("GET", `/orders/${encodeURIComponent(orderId)}/after-sales`); } catch { /* shown empty */ }
  const box = h("div", { class: "card", "data-test": "after-sales-list" }, h("h2", {}, t("as.mine")));
  if (!page.items.length) {
    box.append(h("p", { class: "muted" }, t("as.none")));
    return { node: box, open: false };
  }
  box.append(h("ul", { class: "list" }, page.items.map((r) => h("li", { "data-request": r.id },
    h("strong", {}, t(`as.${r.type}`)), " ",
    h("span", { class: `badge as-${r.status}`, "data-test": "as-status" }, t(`as.status.${r.status}`)), " ",
    h("span", { class: "muted small" }, when(ctx, r.created_at)),
    h("div", { class: "small" }, r.reason),
    r.note ? h("div", { class: "small", "data-test": "as-note" }, t("as.note", { note: r.note })) : null))));
  return { node: box, open: page.items.some((r) => r.status === "requested") };
}

function itemsText(ctx, order) {
  return (order.items || []).map((it) => ctx.t("order.line", { sku: itemName(ctx, it), qty: it.qty, price: ctx.money(it.price) })).join(" · ");
}

export async function list(ctx, query) {
  const { h, t, api, money } = ctx;
  if (!ctx.requireSignIn()) return null;
  const cursor = query.get("cursor");
  const page = await api("GET", `/orders?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
  const rows = (page.items || []).map((o) => h("a", { class: "card order-row", href: `#/order/${o.order_id}`, "data-order": o.order_id },
    h("div", { class: "row-head" },
      h("strong", {}, o.sale_id ? t("order.flash") : t("order.regular")),
      h("span", { class: `badge st-${o.status}`, "data-test": "order-status" }, t(`status.${o.status}`))),
    h("div", { class: "muted small" }, o.order_id),
    h("div", { class: "small" }, itemsText(ctx, o)),
    h("div", {}, t("order.total"), " ", h("span", { class: "price" }, money(o.total)), " · ",
      h("span", { class: "muted" }, when(ctx, o.created_at)))));
  return h("section", {},
    h("h1", {}, t("orders.title")),
    h("p", { class: "muted small" }, t("orders.persistedNote")),
    rows.length ? h("div", { class: "list" }, rows) : h("p", { class: "card muted" }, t("orders.none")),
    h("div", { class: "pager" },
      cursor ? h("a", { class: "button secondary", href: "#/orders" }, t("page.first")) : null,
      page.next_cursor ? h("a", { class: "button secondary", href: `#/orders?cursor=${encodeURIComponent(page.next_cursor)}` }, t("page.next")) : null));
}

export async function detail(ctx, orderId) {
  const { h, t, api, money, busy } = ctx;
  if (!ctx.requireSignIn()) return null;
  const id = encodeURIComponent(orderId);
  let order = await api("GET", `/orders/${id}`);
  if (order.status === "queued") {
    // Follow a queued order until the writer has persisted it.
    ctx.every(700, async () => {
      try {
        const next = await api("GET", `/orders/${id}`);
        if (next.status !== "queued") ctx.rerender();
      } catch { /* keep waiting */ }
    });
  }
  let history = { items: [] };
  if (order.status !== "queued") {
    try { history = await api("GET", `/orders/${id}/history`); } catch { /* shown empty */ }
  }
  const reload = () => ctx.rerender();
  const actions = h("div", { class: "actions" });
  const statusBadge = h("span", { class: `badge st-${order.status}`, "data-test": "order-status" }, t(`status.${order.status}`));
  const actionNote = h("div", { "data-test": "order-action-result", "aria-live": "polite" });
  const kept = lastAction.get(order.order_id);
  if (kept) {
    lastAction.delete(order.order_id);
    actionNote.replaceChildren(h("p", { class: `notice ${kept.kind}`, role: kept.kind === "error" ? "alert" : "status" }, kept.text));
  }
  // Cancel and confirm receipt: the button turns busy at once, the answer's status replaces
  // the badge as soon as it arrives, then the page reloads the order (history, actions) and
  // keeps the outcome on screen. A refusal (the order moved on meanwhile) also reloads.
  function lifecycleAction(button, path, okKey) {
    const others = () => [...actions.querySelectorAll("button")].filter((b) => b !== button);
    busy(button, async () => {
      for (const b of others()) b.disabled = true;
      try {
        const answer = await api("POST", `/orders/${id}/${path}`);
        const next = answer?.status || order.status;
        statusBadge.className = `badge st-${next}`;
        statusBadge.textContent = t(`status.${next}`);
        lastAction.set(order.order_id, { kind: "ok", text: t(okKey) });
        actionNote.replaceChildren(h("p", { class: "notice ok", role: "status" }, t(okKey)));
        reload();
      } catch (err) {
        for (const b of others()) b.disabled = false;
        if (err.code === "illegal_transition" || err.status === 404) {
          lastAction.set(order.order_id, { kind: "error", text: ctx.errText(err) });
          reload();
        }
        throw err;
      }
    }, { ok: t(okKey) });
  }
  const chooser = needsAddress(order) ? await addressChooser(ctx, order, reload) : null;
  if (order.status === "pending_payment" && !chooser) actions.append(payButton(ctx, order, reload));
  if (order.status === "pending_payment" || order.status === "paid") {
    // Cancelling asks once more on the page itself (no browser dialog).
    const cancel = h("button", { type: "button", class: "secondary", "data-test": "cancel" }, t("order.cancel"));
    const yes = h("button", { type: "button", class: "danger", "data-test": "cancel-yes" }, t("order.cancelYes"));
    const no = h("button", { type: "button", class: "secondary", "data-test": "cancel-no" }, t("order.cancelNo"));
    const ask = h("div", { class: "confirm-box", "data-test": "cancel-confirm", role: "group", hidden: true },
      h("span", {}, t("order.cancelConfirm")), " ", yes, " ", no);
    cancel.addEventListener("click", () => { ask.hidden = false; cancel.hidden = true; yes.focus(); });
    no.addEventListener("click", () => { ask.hidden = true; cancel.hidden = false; cancel.focus(); });
    yes.addEventListener("click", () => { no.disabled = true; lifecycleAction(yes, "cancel", "order.cancelled"); });
    actions.append(cancel, ask);
  }
  if (order.status === "shipped" || order.status === "delivered") {
    const confirm = h("button", { type: "button", "data-test": "confirm" }, t("order.confirm"));
    confirm.addEventListener("click", () => lifecycleAction(confirm, "confirm-receipt", "order.confirmed"));
    actions.append(confirm);
  }
  let afterSales = null;
  let requests = null;
  if (["delivered", "completed", "refunded"].includes(order.status)) {
    requests = await afterSalesList(ctx, order.order_id);
  }
  if ((order.status === "delivered" || order.status === "completed") && !requests?.open) {
    const form = h("form", { class: "card", "data-test": "after-sales" },
      h("h2", {}, t("as.title")),
      h("label", {}, t("as.type"), h("select", { name: "type" },
        ["refund", "return", "exchange"].map((v) => h("option", { value: v }, t(`as.${v}`))))),
      h("label", {}, t("as.reason"), h("textarea", { name: "reason", required: true, maxlength: 500, rows: 3 })),
      h("button", { type: "submit" }, t("as.submit")));
    const key = ctx.newKey();
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const btn = form.querySelector("button");
      busy(btn, async () => {
        await api("POST", `/orders/${id}/after-sales`, { body: { type: form.type.value, reason: form.reason.value.trim() }, key });
        form.replaceChildren(h("div", { class: "notice ok", role: "status" }, t("as.sent")));
        const next = await afterSalesList(ctx, order.order_id);
        if (requests?.node.isConnected) requests.node.replaceWith(next.node);
      });
    });
    afterSales = form;
  }
  const addr = order.address;
  const ship = order.shipment;
  return h("section", { "data-order": order.order_id },
    h("h1", {}, t("order.title")),
    h("div", { class: "card" },
      h("div", { class: "row-head" },
        h("span", { class: "muted small" }, order.order_id),
        statusBadge),
      actionNote,
      order.status === "queued" ? h("p", { class: "notice info", role: "status" }, t("order.queuedNote")) : null,
      h("table", {}, h("tbody", {},
        (order.items || []).map((it) => h("tr", {},
          h("td", {}, itemName(ctx, it)), h("td", {}, `× ${it.qty}`), h("td", {}, money(it.price)))))),
      h("dl", { class: "totals" },
        h("dt", {}, t("co.shipping")), h("dd", {}, money(order.shipping_fee)),
        h("dt", {}, t("co.discount")), h("dd", {}, `-${money(order.discount)}`),
        h("dt", {}, t("co.points")), h("dd", {}, String(order.points_used || 0)),
        h("dt", {}, t("order.total")), h("dd", { class: "price", "data-test": "order-total" }, money(order.total))),
      addr ? h("p", { class: "small", "data-test": "ship-to" }, t("order.shipTo"), " ", `${addr.recipient} ${addr.phone} ${addr.province}${addr.city}${addr.district || ""} ${addr.line}`) : null,
      ship ? h("p", { class: "small" }, t("order.shipment", { carrier: ship.carrier || "", no: ship.tracking_number || "" })) : null,
      actions),
    chooser,
    h("div", { class: "card" },
      h("h2", {}, t("order.history")),
      history.items?.length ? h("ol", { class: "timeline", "data-test": "history" },
        history.items.map((s) => h("li", {},
          h("strong", {}, t(`status.${s.to_status}`)), " ",
          h("span", { class: "muted small" }, when(ctx, s.at)), " ",
          h("span", { class: "small" }, t(`reason.${s.reason}`) === `reason.${s.reason}` ? s.reason : t(`reason.${s.reason}`)))))
        : h("p", { class: "muted" }, t("order.noHistory"))),
    requests?.node || null,
    afterSales,
    h("a", { href: "#/orders" }, t("orders.back")));
}
