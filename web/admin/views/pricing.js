// Price lists: timed lower prices for some SKUs. List with paging, create, view one, edit before
// it starts, end early. A price not below the SKU's own price is shown at its row.
import {
  h, money, field, form, busy, noticeSlot, table, section, keyValues, when, label, isoToLocal,
  query,
} from "../ui.js";

const BADGE = { upcoming: "scheduled", live: "running", ended: "ended" };

// The SKU rows of a list: each a SKU id and a price (yuan); acts as one field of a form().
function itemsEditor(t, items) {
  const rowsBox = h("div", {});
  const err = h("span", { class: "field-error", role: "alert", hidden: true });
  let rows = [];

  function addRow(item) {
    const sku = field({ name: "sku_id", label: t("plist.sku_id"), type: "int",
      value: item?.sku_id });
    const price = field({ name: "price", label: t("plist.price"), type: "money",
      value: item ? (item.price / 100).toFixed(2) : undefined });
    const drop = h("button", { type: "button", class: "secondary" }, t("plist.remove_item"));
    const el = h("fieldset", { class: "sku-row", "data-test": "item-row" },
      h("legend", {}, t("plist.item")), sku.el, price.el, drop);
    const row = { sku, price, el };
    drop.addEventListener("click", () => {
      rows = rows.filter((r) => r !== row);
      el.remove();
    });
    rows.push(row);
    rowsBox.append(el);
    return row;
  }
  (items && items.length ? items : [null]).forEach(addRow);
  const add = h("button", { type: "button", class: "secondary" }, t("plist.add_item"));
  add.addEventListener("click", () => addRow(null).sku.input.focus());
  // The classes of the product page's SKU rows: full width, one card per row.
  const el = h("div", { class: "sku-rows", "data-field": "items" },
    h("h3", {}, t("plist.items")), rowsBox, h("div", { class: "actions" }, add), err);

  return {
    name: "items", el, input: add,
    get() {
      // No rows: the API's invalid_request (at `$.items`) is shown here.
      return rows.map((r) => {
        const out = {};
        for (const [key, f] of [["sku_id", r.sku], ["price", r.price]]) {
          try { out[key] = f.get(); } catch (e) { f.error(e.message); throw e; }
        }
        return out;
      });
    },
    set() {},
    error(message) {
      err.textContent = message || "";
      err.hidden = !message;
      if (!message) rows.forEach((r) => { r.sku.error(""); r.price.error(""); });
    },
    // price_not_lower: details.items [{sku_id, price, list_price}] -> the rows' price fields.
    showApiError(e) {
      if (e?.code === "price_not_lower") {
        for (const bad of e.details?.items || []) {
          rows.filter((r) => r.sku.input.value.trim() === String(bad.sku_id)).forEach((r) => {
            r.price.error(t("plist.not_lower", { list_price: money(bad.list_price) }));
          });
        }
      } else if (e?.code === "not_found" && e.details?.sku_ids) {
        for (const id of e.details.sku_ids) {
          rows.filter((r) => r.sku.input.value.trim() === String(id))
            .forEach((r) => r.sku.error(t("err.not_found")));
        }
      }
    },
  };
}

function listFields(t, list) {
  return [
    field({ name: "name", label: t("plist.name"), value: list?.name }),
    field({ name: "starts_at", label: t("plist.starts"), type: "datetime",
      value: list ? isoToLocal(list.starts_at) : undefined }),
    field({ name: "ends_at", label: t("plist.ends"), type: "datetime",
      value: list ? isoToLocal(list.ends_at) : undefined }),
  ];
}

export async function render(ctx, root) {
  const { api, t } = ctx;
  root.append(h("h1", {}, t("plist.title")));
  const panel = h("div", {});
  const listBox = h("div", { "data-test": "price-lists" });
  const listSlot = noticeSlot();
  const more = h("button", { type: "button", class: "secondary", hidden: true },
    t("common.more"));
  let items = [];
  let cursor = null;

  function actions(p) {
    const slot = noticeSlot();
    const buttons = [];
    const view = h("button", { type: "button", class: "secondary" }, t("plist.view"));
    view.addEventListener("click", () => showList(p.id, view, slot));
    buttons.push(view);
    if (p.state === "upcoming") {
      const edit = h("button", { type: "button", class: "secondary" }, t("plist.edit"));
      edit.addEventListener("click", () => showEdit(p.id, edit, slot));
      buttons.push(edit);
    }
    if (p.state !== "ended") {
      const end = h("button", { type: "button", class: "danger" }, t("plist.end"));
      end.addEventListener("click", async () => {
        if (!window.confirm(t("plist.confirm_end", { id: p.id }))) return;
        const r = await busy(end, slot, () => api("POST", `/admin/price-lists/${p.id}/end`),
          t("plist.ended", { id: p.id }));
        if (r) reload();
      });
      buttons.push(end);
    }
    return h("div", { class: "actions" }, buttons, slot.el);
  }

  function draw() {
    listBox.replaceChildren(table([
      { label: t("common.id"), cell: (p) => String(p.id) },
      { label: t("plist.name"), cell: (p) => p.name },
      { label: t("plist.starts"), cell: (p) => when(p.starts_at) },
      { label: t("plist.ends"), cell: (p) => when(p.ends_at) },
      { label: t("plist.item_count"), cell: (p) => String(p.item_count) },
      { label: t("plist.state"), cell: (p) => h("span", { class: `badge ${BADGE[p.state] || ""}`,
        "data-test": "state" }, label("pstate", p.state)) },
      { label: t("common.actions"), cell: actions },
    ], items));
    listBox.querySelectorAll("tbody tr").forEach((tr, i) => {
      tr.dataset.id = String(items[i].id);
    });
    more.hidden = !cursor;
  }

  async function load(append) {
    const page = await busy(null, listSlot, () => api("GET", `/admin/price-lists${query({
      cursor: append ? cursor : undefined, limit: 20 })}`));
    if (!page) return;
    items = append ? items.concat(page.items) : page.items;
    cursor = page.next_cursor;
    draw();
  }
  const reload = () => load(false);
  more.addEventListener("click", () => load(true));

  function close() {
    return h("button", { type: "button", class: "secondary",
      onclick: () => panel.replaceChildren() }, t("common.cancel"));
  }

  async function showList(id, button, slot) {
    const p = await busy(button, slot, () => api("GET", `/admin/price-lists/${id}`));
    if (!p) return;
    panel.replaceChildren(section(t("plist.view_title", { id }),
      h("div", { "data-test": "price-list" }, keyValues([
        [t("plist.name"), p.name],
        [t("plist.starts"), when(p.starts_at)],
        [t("plist.ends"), when(p.ends_at)],
        [t("plist.state"), label("pstate", p.state)],
        [t("plist.created_by"), p.created_by],
        [t("plist.ended_at"), p.ended_at ? when(p.ended_at) : null],
      ]), table([
        { label: t("plist.sku_id"), cell: (i) => String(i.sku_id) },
        { label: t("plist.product"), cell: (i) => h("a", { href: `#/products/${i.product_id}` },
          String(i.product_id)) },
        { label: t("plist.list_price"), cell: (i) => money(i.list_price) },
        { label: t("plist.price"), cell: (i) => money(i.price) },
      ], p.items)), close()));
    panel.scrollIntoView({ block: "start" });
  }

  // A form of a list: create (list null) or edit before the start.
  function listForm(list) {
    const editor = itemsEditor(t, list?.items);
    const plain = listFields(t, list);
    // An edit sends the name and times only when changed (the inputs drop seconds); items always.
    const initial = new Map(plain.map((x) => [x.name, x.input.value.trim()]));
    const f = form({
      fields: [...plain, editor],
      submit: list ? t("common.save") : t("common.create"),
      className: list ? "edit-price-list" : "new-price-list",
      onSubmit: async (v, key) => {
        try {
          if (list) {
            const body = { items: v.items };
            plain.forEach((x) => {
              if (x.input.value.trim() !== initial.get(x.name)) body[x.name] = v[x.name];
            });
            return await api("PATCH", `/admin/price-lists/${list.id}`, { body });
          }
          return await api("POST", "/admin/price-lists", { body: v, key });
        } catch (err) {
          editor.showApiError(err);
          throw err;
        }
      },
      success: (r) => {
        setTimeout(reload, 0);
        plain.forEach((x) => initial.set(x.name, x.input.value.trim()));
        return t(list ? "plist.saved" : "plist.created", { id: r.id });
      },
    });
    f.el.dataset.test = list ? "edit-price-list" : "new-price-list";
    return f;
  }

  async function showEdit(id, button, slot) {
    const p = await busy(button, slot, () => api("GET", `/admin/price-lists/${id}`));
    if (!p) return;
    const f = listForm(p);
    panel.replaceChildren(section(t("plist.edit_title", { id }), f.el, close()));
    panel.scrollIntoView({ block: "start" });
  }

  root.append(
    section(t("plist.title"), listSlot.el, listBox, more),
    panel,
    section(t("plist.new"), listForm(null).el));
  await reload();
}
