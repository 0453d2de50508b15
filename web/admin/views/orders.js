// Orders: filter and page, CSV export (fetched with the token), one order with its buyer, its
// lines (product names and SKU attributes), address and history, ship with carrier + tracking
// number (refused while the buyer has not given an address), mark delivered.
import {
  h, money, field, form, busy, noticeSlot, table, section, keyValues, when, label, query,
  fetchBlob, saveBlob, errorText,
} from "../ui.js";

// "Name (color: red) × 2" for one order line.
function lineText(i, withQty) {
  const attrs = Object.entries(i.attributes || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  const name = `${i.product_name || `SKU ${i.sku_id}`}${attrs ? ` (${attrs})` : ""}`;
  return withQty ? `${name} × ${i.qty}` : name;
}

const STATUSES = ["pending_payment", "paid", "shipped", "delivered", "completed", "cancelled",
  "refunded"];

export async function render(ctx, root) {
  if (ctx.params[0]) return renderOrder(ctx, root, ctx.params[0]);
  const { api, t, session } = ctx;
  root.append(h("h1", {}, t("orders.title")));
  const status = field({ name: "status", label: t("common.status"), type: "select",
    options: [["", t("common.all")], ...STATUSES.map((s) => [s, t(`ostatus.${s}`)])] });
  const user = field({ name: "user_id", label: t("orders.user_id"), optional: true });
  const sale = field({ name: "sale_id", label: t("orders.sale_id"), type: "int", optional: true });
  const from = field({ name: "created_from", label: t("common.from"), type: "datetime",
    optional: true });
  const to = field({ name: "created_to", label: t("common.to"), type: "datetime",
    optional: true });
  const listBox = h("div", {});
  const more = h("button", { type: "button", class: "secondary", hidden: true }, t("common.more"));
  let items = [];
  let cursor = null;
  let filters = {};

  const filterForm = form({
    fields: [status, user, sale, from, to], submit: t("common.search"), className: "filters",
    onSubmit: async (v) => { filters = v; await load(false); return true; },
    success: () => "",
  });
  const exportSlot = noticeSlot();
  const exportBtn = h("button", { type: "button", class: "secondary" }, t("common.csv"));
  exportBtn.addEventListener("click", () => busy(exportBtn, exportSlot, async () => {
    const blob = await fetchBlob(session, api, `/admin/orders/export.csv${query(filters)}`);
    saveBlob(blob, "orders.csv");
  }, t("common.downloaded", { name: "orders.csv" })));

  function draw() {
    listBox.replaceChildren(table([
      { label: t("common.id"), cell: (o) => h("a", { href: `#/orders/${encodeURIComponent(o.order_id)}` },
        o.order_id) },
      { label: t("orders.buyer"), cell: (o) => h("span", { "data-test": "order-buyer" }, o.user_id) },
      { label: t("orders.products"), cell: (o) => h("span", { "data-test": "order-products" },
        (o.items || []).map((i) => lineText(i, true)).join(" · ") || "—") },
      { label: t("common.status"), cell: (o) => h("span", { class: `badge ${o.status}` },
        label("ostatus", o.status),
        o.status === "paid" && o.has_address === false ? ` · ${t("orders.no_address")}` : "") },
      { label: t("orders.total"), cell: (o) => money(o.total) },
      { label: t("orders.created"), cell: (o) => when(o.created_at) },
      { label: t("orders.tracking"), cell: (o) => o.tracking_number
        ? `${o.carrier} ${o.tracking_number}` : "—" },
    ], items));
    more.hidden = !cursor;
  }
  async function load(append) {
    const page = await api("GET", `/admin/orders${query({ ...filters,
      cursor: append ? cursor : undefined })}`);
    items = append ? items.concat(page.items) : page.items;
    cursor = page.next_cursor;
    draw();
  }
  more.addEventListener("click", () => busy(more, null, () => load(true)));
  root.append(section(t("orders.title"), filterForm.el,
    h("div", { class: "row" }, exportBtn, exportSlot.el), listBox, more));
  try { await load(false); } catch (err) { filterForm.slot.set("error", errorText(err)); }
}

async function renderOrder(ctx, root, orderId) {
  const { api, t } = ctx;
  const id = encodeURIComponent(orderId);
  const [order, history] = await Promise.all([
    api("GET", `/orders/${id}`),
    api("GET", `/orders/${id}/history`).catch(() => ({ items: [] })),
  ]);
  root.append(h("p", {}, h("a", { href: "#/orders" }, `← ${t("common.back")}`)),
    h("h1", {}, t("orders.order", { id: order.order_id })));
  const statusEl = h("span", { class: `badge ${order.status}`, "data-test": "order-status" },
    label("ostatus", order.status));
  const a = order.address;
  const ship = order.shipment;
  root.append(section(t("common.status"), h("div", { class: "row" }, statusEl),
    keyValues([
      [t("orders.buyer"), h("span", { "data-test": "order-buyer" }, order.user_id || "—")],
      [t("orders.total"), money(order.total)],
      [t("orders.fee"), money(order.shipping_fee)],
      [t("orders.discount"), money(order.discount)],
      [t("orders.created"), when(order.created_at)],
      [t("orders.paid_at"), when(order.paid_at)],
      [t("orders.shipment"), ship ? `${ship.carrier} ${ship.tracking_number} · ${when(ship.shipped_at)}`
        + (ship.delivered_at ? ` · ${when(ship.delivered_at)}` : "") : "—"],
    ])));
  root.append(section(t("orders.lines"), table([
    { label: t("orders.product"), cell: (i) => h("span", { "data-test": "line-product" },
      lineText(i, false)) },
    { label: "SKU", cell: (i) => String(i.sku_id) },
    { label: t("orders.qty"), cell: (i) => String(i.qty) },
    { label: t("common.price"), cell: (i) => money(i.price ?? i.unit_price) },
  ], order.items || [])));
  root.append(section(t("orders.address"), a ? h("address", {},
    `${a.recipient} ${a.phone}`, h("br"),
    [a.province, a.city, a.district, a.line, a.postal_code].filter(Boolean).join(" "))
    : h("p", { class: "muted" }, t("orders.no_address"))));

  if (order.status === "paid") {
    const f = form({
      fields: [
        field({ name: "carrier", label: t("orders.carrier") }),
        field({ name: "tracking_number", label: t("orders.tracking"),
          attrs: { autocomplete: "off", pattern: "[A-Za-z0-9-]{4,40}" } }),
      ],
      submit: t("orders.ship"), className: "ship-form",
      onSubmit: (v) => api("POST", `/admin/orders/${id}/ship`, { body: v }),
      success: (r) => {
        setTimeout(() => {
          if (!ctx.stale()) { root.replaceChildren(); renderOrder(ctx, root, orderId); }
        }, 1500);
        statusEl.textContent = label("ostatus", r.status);
        return t("orders.shipped", { n: r.tracking_number }); },
    });
    root.append(section(t("orders.ship"),
      a ? null : h("p", { class: "notice error", "data-test": "address-missing" }, t("orders.ship_needs_address")),
      f.el));
  }
  if (order.status === "shipped") {
    const slot = noticeSlot();
    const btn = h("button", { type: "button" }, t("orders.deliver"));
    btn.addEventListener("click", async () => {
      const r = await busy(btn, slot, () => api("POST", `/admin/orders/${id}/deliver`),
        t("orders.delivered"));
      if (r) { statusEl.textContent = label("ostatus", r.status); btn.disabled = true; }
    });
    root.append(section(t("orders.deliver"), btn, slot.el));
  }
  root.append(section(t("orders.history"), table([
    { label: t("orders.at"), cell: (s) => when(s.at) },
    { label: t("orders.step"), cell: (s) => `${s.from_status ? label("ostatus", s.from_status) : "∅"}`
      + ` → ${label("ostatus", s.to_status)}` },
    { label: t("orders.actor"), cell: (s) => s.actor || "—" },
    { label: t("orders.reason"), cell: (s) => s.reason || "—" },
  ], history.items || [])));
}
