// Flash sales: list by state with paging, create, edit before the start, end early, warm up,
// and a sale's report.
import {
  h, money, field, form, busy, noticeSlot, table, section, keyValues, when, label, isoToLocal,
  query,
} from "../ui.js";

function saleFields(t, sale) {
  const fields = [
    field({ name: "price", label: t("sales.price"), type: "money",
      value: sale ? (sale.price / 100).toFixed(2) : undefined }),
    field({ name: "stock", label: t("sales.stock"), type: "int", value: sale?.stock }),
    field({ name: "per_user_limit", label: t("sales.limit"), type: "int",
      value: sale?.per_user_limit ?? 1 }),
    field({ name: "starts_at", label: t("sales.starts"), type: "datetime",
      value: sale ? isoToLocal(sale.starts_at) : undefined }),
    field({ name: "ends_at", label: t("sales.ends"), type: "datetime",
      value: sale ? isoToLocal(sale.scheduled_ends_at || sale.ends_at) : undefined }),
    field({ name: "requires_token", label: t("sales.token"), type: "check",
      value: sale?.requires_token ?? false }),
  ];
  if (!sale) {
    fields.unshift(field({ name: "sku_id", label: t("sales.sku_id"), type: "int" }));
    // Stock shards are chosen at creation only (a very hot sale: see docs/scaling.md).
    fields.push(field({ name: "shards", label: t("sales.shards"), type: "int", value: 1 }));
  }
  return fields;
}

export async function render(ctx, root) {
  const { api, t } = ctx;
  root.append(h("h1", {}, t("sales.title")));
  const panel = h("div", {});
  const listBox = h("div", {});
  const more = h("button", { type: "button", class: "secondary", hidden: true },
    t("common.more"));
  const stateSel = field({ name: "state", label: t("sales.state"), type: "select",
    options: [["", t("common.all")], ...["scheduled", "running", "ended"]
      .map((s) => [s, t(`state.${s}`)])] });
  const listSlot = noticeSlot();
  let cursor = null;
  let items = [];

  function actions(s) {
    const slot = noticeSlot();
    const buttons = [];
    if (s.state === "scheduled") {
      buttons.push(h("button", { type: "button", class: "secondary",
        onclick: () => showEdit(s) }, t("sales.do_edit")));
    }
    if (s.state !== "ended") {
      const warm = h("button", { type: "button", class: "secondary" }, t("sales.warm"));
      warm.addEventListener("click", () => busy(warm, slot,
        () => api("POST", `/admin/flash-sales/${s.id}/warm-up`),
        (r) => t("sales.warmed", { id: s.id, n: r.remaining })));
      const end = h("button", { type: "button", class: "danger" }, t("sales.end"));
      end.addEventListener("click", async () => {
        if (!window.confirm(t("sales.confirm_end", { id: s.id }))) return;
        const r = await busy(end, slot, () => api("POST", `/admin/flash-sales/${s.id}/end`),
          t("sales.ended", { id: s.id }));
        if (r) reload();
      });
      buttons.push(warm, end);
    }
    const rep = h("button", { type: "button", class: "secondary" }, t("sales.report"));
    rep.addEventListener("click", () => showReport(s.id, rep, slot));
    buttons.push(rep);
    return h("div", { class: "actions" }, buttons, slot.el);
  }

  function draw() {
    listBox.replaceChildren(table([
      { label: t("common.id"), cell: (s) => String(s.id) },
      { label: t("sales.product"), cell: (s) => `${s.product_name} (SKU ${s.sku_id})` },
      { label: t("sales.price"), cell: (s) => money(s.price) },
      { label: t("sales.stock"), cell: (s) => `${s.sold} / ${s.stock}` },
      { label: t("sales.limit"), cell: (s) => String(s.per_user_limit) },
      { label: t("sales.starts"), cell: (s) => when(s.starts_at) },
      { label: t("sales.ends"), cell: (s) => when(s.ends_at) },
      { label: t("sales.state"), cell: (s) => h("span", { class: `badge ${s.state}` },
        label("state", s.state)) },
      { label: t("common.actions"), cell: actions },
    ], items));
    more.hidden = !cursor;
  }

  async function load(append) {
    const page = await busy(null, listSlot, () => api("GET", `/admin/flash-sales${query({
      state: stateSel.input.value, cursor: append ? cursor : undefined, limit: 20 })}`));
    if (!page) return;
    items = append ? items.concat(page.items) : page.items;
    cursor = page.next_cursor;
    draw();
  }
  const reload = () => load(false);
  stateSel.input.addEventListener("change", reload);
  more.addEventListener("click", () => load(true));

  async function showReport(id, button, slot) {
    const r = await busy(button, slot, () => api("GET", `/admin/flash-sales/${id}/report`));
    if (!r) return;
    const keys = ["stock", "sold", "accepted", "in_flight", "remaining", "returned_to_sku",
      "paid_orders", "revenue", "buyers", "orders", "units_returned", "sold_out",
      "sell_out_seconds", "closed"];
    const pairs = keys.map((k) => [t(`report.${k}`), k === "revenue" ? money(r[k])
      : typeof r[k] === "boolean" ? t(r[k] ? "common.yes" : "common.no") : String(r[k] ?? "—")]);
    const byStatus = Object.entries(r.orders_by_status || {})
      .map(([st, n]) => [label("ostatus", st), String(n)]);
    panel.replaceChildren(section(t("sales.report_of", { id }), h("div", { "data-test": "report" },
      keyValues([...pairs, ...byStatus]))));
    panel.scrollIntoView({ block: "start" });
  }

  function showEdit(s) {
    const f = form({
      fields: saleFields(t, s), submit: t("common.save"),
      onSubmit: (v) => api("PATCH", `/admin/flash-sales/${s.id}`, { body: v }),
      success: (r) => { setTimeout(reload, 0); return t("sales.saved", { id: r.id }); },
    });
    const cancel = h("button", { type: "button", class: "secondary",
      onclick: () => panel.replaceChildren() }, t("common.cancel"));
    panel.replaceChildren(section(t("sales.edit", { id: s.id }), f.el, cancel));
    panel.scrollIntoView({ block: "start" });
  }

  const create = form({
    fields: saleFields(t, null), submit: t("common.create"), className: "new-sale",
    onSubmit: (v, key) => api("POST", "/admin/flash-sales", { body: v, key }),
    success: (r) => { setTimeout(reload, 0); return t("sales.created", { id: r.id }); },
  });
  create.el.dataset.test = "new-sale";
  root.append(
    section(t("sales.title"), h("div", { class: "inline-form" }, stateSel.el), listSlot.el,
      listBox, more),
    panel,
    section(t("sales.new"), create.el));
  await reload();
}
