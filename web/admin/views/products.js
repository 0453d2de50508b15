// Products and SKUs: list every product (unpublished too, by name, state and category) with
// each SKU's stock and sold, open one, create with SKUs, edit price/stock, publish/unpublish,
// add a SKU; categories: list, create, rename.
import {
  h, money, field, form, busy, noticeSlot, table, section, errorText, errorField, newKey, query,
  when,
} from "../ui.js";

function parseAttributes(text) {
  const out = {};
  for (const part of text.split(/[,，;；]/)) {
    const p = part.trim();
    if (!p) continue;
    const [k, ...rest] = p.split(/[=:：]/);
    out[k.trim()] = rest.join("=").trim();
  }
  return out;
}

function attrText(attributes) {
  return Object.entries(attributes || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—";
}

function flattenCategories(items, depth = 0, out = []) {
  for (const c of items || []) {
    out.push({ ...c, depth });
    flattenCategories(c.children, depth + 1, out);
  }
  return out;
}

export async function render(ctx, root) {
  const { api, t, params } = ctx;
  const tree = await api("GET", "/categories").catch(() => ({ items: [] }));
  const cats = flattenCategories(tree.items);
  const catOptions = [["", t("products.no_category")],
    ...cats.map((c) => [String(c.id), `${"— ".repeat(c.depth)}${c.name}`])];

  root.append(h("h1", {}, t("products.title")));

  // ---- every product (unpublished too), with each SKU's stock and sold ----
  const results = h("div", { "data-test": "product-list" });
  const q = field({ name: "q", label: t("common.search"),
    attrs: { placeholder: t("catalog.search_ph"), type: "search" } });
  const published = field({ name: "published", label: t("catalog.state"), type: "select",
    options: [["", t("common.all")], ["true", t("catalog.only_published")],
      ["false", t("catalog.only_unpublished")]] });
  const category = field({ name: "category_id", label: t("catalog.category_filter"),
    type: "select", options: [["", t("common.all")], ...catOptions.slice(1)] });
  const searchSlot = noticeSlot();
  const searchBtn = h("button", { type: "submit" }, t("common.search"));
  const searchForm = h("form", { class: "inline-form" }, q.el, published.el, category.el,
    searchBtn, searchSlot.el);
  const more = h("button", { type: "button", class: "secondary", hidden: true },
    t("common.more"));
  let items = [];
  let cursor = null;
  let filters = {};
  function showList() {
    results.replaceChildren(table([
      { label: t("common.id"), cell: (p) => String(p.id) },
      { label: t("common.name"), cell: (p) => p.name },
      { label: t("catalog.state"), cell: (p) => h("span",
        { class: `badge ${p.published ? "ok" : "off"}` },
        t(p.published ? "products.published" : "products.unpublished")) },
      { label: t("products.price_from"), cell: (p) => money(p.price_from) },
      { label: t("catalog.sku_stock"), cell: (p) => h("div", { class: "sku-lines" },
        p.skus.map((s) => h("div", { "data-test": "sku-line" }, t("catalog.sku_line", {
          id: s.id, stock: s.stock, sold: s.sold, available: s.available })))) },
      { label: t("catalog.updated"), cell: (p) => when(p.updated_at) },
      { label: t("common.actions"),
        cell: (p) => h("a", { class: "button secondary", href: `#/products/${p.id}` },
          t("common.open")) },
    ], items), more);
  }
  async function load(button, append) {
    const qs = query({ ...filters, limit: 50, cursor: append ? cursor : undefined });
    const page = await busy(button, searchSlot, () => api("GET", `/admin/products${qs}`));
    if (!page) return;
    items = append ? items.concat(page.items) : page.items;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    showList();
  }
  async function search() {
    filters = { q: q.input.value.trim(), published: published.get(),
      category_id: category.get() };
    await load(searchBtn, false);
  }
  searchForm.addEventListener("submit", (e) => { e.preventDefault(); search(); });
  more.addEventListener("click", () => load(more, true));
  const openId = field({ name: "product_id", label: t("products.open_id"), type: "int" });
  const openForm = h("form", { class: "inline-form" }, openId.el,
    h("button", { type: "submit", class: "secondary" }, t("common.open")));
  openForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const id = openId.input.value.trim();
    if (/^\d+$/.test(id)) ctx.go(`#/products/${id}`);
    else openId.error(t("err.number"));
  });

  const detail = h("div", {});
  root.append(section(t("catalog.list"), searchForm, openForm, results), detail);
  if (params[0]) await showProduct(ctx, detail, Number(params[0]), catOptions);
  else search();

  // ---- create ----
  root.append(newProductSection(ctx, catOptions));
  root.append(categoriesSection(ctx, cats));
}

async function showProduct(ctx, box, id, catOptions) {
  const { api, t } = ctx;
  let p;
  try {
    p = await api("GET", `/admin/products/${id}`);
  } catch (err) {
    box.replaceChildren(h("div", { class: "notice error", role: "alert" }, errorText(err)));
    return;
  }
  const slot = noticeSlot();
  const state = h("span", { class: `badge ${p.published ? "ok" : "off"}`, "data-test": "published" },
    t(p.published ? "products.published" : "products.unpublished"));
  const toggle = h("button", { type: "button", class: "secondary" },
    t(p.published ? "products.unpublish" : "products.publish"));
  toggle.addEventListener("click", async () => {
    const path = `/admin/products/${id}/${p.published ? "unpublish" : "publish"}`;
    const r = await busy(toggle, slot, () => api("POST", path),
      t("common.done"));
    if (r) {
      p.published = r.published;
      state.textContent = t(p.published ? "products.published" : "products.unpublished");
      state.className = `badge ${p.published ? "ok" : "off"}`;
      toggle.textContent = t(p.published ? "products.unpublish" : "products.publish");
    }
  });

  const edit = form({
    fields: [
      field({ name: "name", label: t("common.name"), value: p.name }),
      field({ name: "description", label: t("products.description"), type: "textarea",
        value: p.description, optional: true }),
      field({ name: "category_id", label: t("products.category"), type: "select",
        options: catOptions, value: p.category?.id ?? "" }),
    ],
    submit: t("common.save"),
    onSubmit: (v) => api("PATCH", `/admin/products/${id}`, { body: {
      name: v.name, description: v.description ?? "",
      category_id: v.category_id ? Number(v.category_id) : null,
    } }),
    success: () => t("common.saved"),
  });

  const skuRows = p.skus.map((s) => {
    const price = field({ name: "price", label: t("common.price"), type: "money",
      value: (s.price / 100).toFixed(2) });
    // Prefilled with the real stock; sent only when changed, so a save of the price never
    // puts back a stock another change replaced meanwhile.
    const stock = field({ name: "stock", label: t("products.new_stock"), type: "int",
      value: s.stock });
    const counts = {
      stock: h("span", { "data-test": "sku-stock" }, String(s.stock)),
      sold: h("span", { "data-test": "sku-sold" }, String(s.sold)),
      available: h("span", { "data-test": "sku-available" }, String(s.available)),
    };
    const rowSlot = noticeSlot();
    const save = h("button", { type: "button" }, t("common.save"));
    save.addEventListener("click", async () => {
      price.error(""); stock.error("");
      let body;
      try { body = { price: price.get() }; const st = stock.get(); if (st !== s.stock) body.stock = st; }
      catch (err) { (err.field === "stock" ? stock : price).error(err.message); return; }
      const r = await busy(save, rowSlot, async () => {
        try { return await api("PATCH", `/admin/skus/${s.id}`, { body }); }
        catch (err) {
          const f = errorField(err, ["price", "stock"]);
          if (f === "stock" || err.code === "stock_below_sold") stock.error(errorText(err));
          else if (f === "price") price.error(errorText(err));
          throw err;
        }
      }, (r) => t("products.sku_saved", { id: r.id, stock: r.stock, sold: r.sold }));
      if (r) {
        Object.assign(s, { stock: r.stock, sold: r.sold, available: r.available });
        stock.set(String(r.stock));
        for (const k of ["stock", "sold", "available"]) counts[k].textContent = String(r[k]);
      }
    });
    return { s, price, stock, counts, save, rowSlot };
  });

  const addSku = form({
    fields: [
      field({ name: "attributes", label: t("products.attributes"), optional: true }),
      field({ name: "price", label: t("common.price"), type: "money" }),
      field({ name: "stock", label: t("common.stock"), type: "int" }),
      field({ name: "member_price", label: t("products.member_price"), type: "money",
        optional: true }),
    ],
    submit: t("products.new_sku"),
    onSubmit: (v, key) => api("POST", `/admin/products/${id}/skus`, { key, body: {
      price: v.price, stock: v.stock, attributes: parseAttributes(v.attributes || ""),
      ...(v.member_price !== undefined ? { member_price: v.member_price } : {}),
    } }),
    success: (r) => { setTimeout(() => showProduct(ctx, box, id, catOptions), 800); return `SKU #${r.id} ✓`; },
  });

  box.replaceChildren(section(t("products.detail", { id }),
    h("div", { class: "row" }, state, toggle), slot.el, edit.el,
    h("h3", {}, t("products.skus")),
    table([
      { label: t("common.id"), cell: (r) => String(r.s.id) },
      { label: t("products.attributes"), cell: (r) => attrText(r.s.attributes) },
      { label: t("catalog.stock"), cell: (r) => r.counts.stock },
      { label: t("catalog.sold"), cell: (r) => r.counts.sold },
      { label: t("products.available"), cell: (r) => r.counts.available },
      { label: t("common.price"), cell: (r) => r.price.el },
      { label: t("products.new_stock"), cell: (r) => r.stock.el },
      { label: t("common.actions"), cell: (r) => h("div", {}, r.save, r.rowSlot.el) },
    ], skuRows),
    h("h3", {}, t("products.new_sku")), addSku.el));
}

function newProductSection(ctx, catOptions) {
  const { api, t } = ctx;
  const name = field({ name: "name", label: t("common.name") });
  const description = field({ name: "description", label: t("products.description"),
    type: "textarea", optional: true });
  const category = field({ name: "category_id", label: t("products.category"), type: "select",
    options: catOptions });
  const tags = field({ name: "tags", label: t("products.tags"), optional: true });
  const published = field({ name: "published", label: t("products.published_now"),
    type: "check", value: true });
  const rowsBox = h("div", { class: "sku-rows" });
  const rows = [];
  function addRow() {
    const row = {
      attributes: field({ name: "attributes", label: t("products.attributes"), optional: true }),
      price: field({ name: "price", label: t("common.price"), type: "money" }),
      stock: field({ name: "stock", label: t("common.stock"), type: "int" }),
    };
    const remove = h("button", { type: "button", class: "secondary small" },
      t("products.remove_sku"));
    row.el = h("fieldset", { class: "sku-row" }, h("legend", {}, "SKU"),
      row.attributes.el, row.price.el, row.stock.el, remove);
    remove.addEventListener("click", () => {
      if (rows.length === 1) return;
      rows.splice(rows.indexOf(row), 1);
      row.el.remove();
    });
    rows.push(row);
    rowsBox.append(row.el);
  }
  addRow();
  const slot = noticeSlot();
  const submit = h("button", { type: "submit" }, t("common.create"));
  const el = h("form", { class: "form-grid", novalidate: true, "data-test": "new-product" },
    name.el, description.el, category.el, tags.el, published.el,
    h("h3", {}, t("products.skus")), rowsBox,
    h("button", { type: "button", class: "secondary", onclick: addRow }, t("products.add_sku")),
    h("div", { class: "form-actions" }, submit), slot.el);
  el.addEventListener("submit", async (e) => {
    e.preventDefault();
    const all = [name, description, tags, ...rows.flatMap((r) => [r.attributes, r.price, r.stock])];
    all.forEach((f) => f.error(""));
    let body;
    try {
      body = {
        name: name.get(), description: description.get() ?? "",
        published: published.get(),
        tags: (tags.get() || "").split(/[,，]/).map((x) => x.trim()).filter(Boolean),
        skus: rows.map((r) => ({ price: r.price.get(), stock: r.stock.get(),
          attributes: parseAttributes(r.attributes.get() || "") })),
      };
      if (category.get()) body.category_id = Number(category.get());
    } catch (err) {
      const f = all.find((x) => x.name === err.field && x.input.value.trim() === "")
        || all.find((x) => x.name === err.field);
      for (const x of all) { try { x.get(); } catch (e2) { x.error(e2.message); } }
      slot.set("error", `${t("common.field", { field: f?.el.querySelector(".label-text")?.textContent })} — ${err.message}`);
      return;
    }
    const key = newKey();
    await busy(submit, slot, async () => {
      try { return await api("POST", "/admin/products", { body, key }); }
      catch (err) {
        const f = errorField(err, ["name", "description", "tags", "price", "stock"]);
        const target = { name, description, tags }[f];
        if (target) target.error(errorText(err));
        throw err;
      }
    }, (r) => {
      setTimeout(() => ctx.go(`#/products/${r.id}`), 0);
      return t("products.created", { id: r.id });
    });
  });
  return section(t("products.new"), el);
}

function categoriesSection(ctx, cats) {
  const { api, t } = ctx;
  const parentOptions = [["", t("products.top")],
    ...cats.map((c) => [String(c.id), `${"— ".repeat(c.depth)}${c.name}`])];
  const create = form({
    fields: [
      field({ name: "name", label: t("common.name") }),
      field({ name: "parent_id", label: t("products.parent"), type: "select",
        options: parentOptions }),
    ],
    submit: t("common.create"),
    onSubmit: (v, key) => api("POST", "/admin/categories", { key, body: {
      name: v.name, parent_id: v.parent_id ? Number(v.parent_id) : null } }),
    success: (r) => t("products.category_created", { id: r.id }),
  });
  const list = table([
    { label: t("common.id"), cell: (c) => String(c.id) },
    { label: t("common.name"), cell: (c) => {
      const f = field({ name: "name", label: `${"— ".repeat(c.depth)}${t("common.name")}`,
        value: c.name });
      const slot = noticeSlot();
      const btn = h("button", { type: "button", class: "secondary" }, t("products.rename"));
      btn.addEventListener("click", () => busy(btn, slot,
        () => api("PATCH", `/admin/categories/${c.id}`, { body: { name: f.input.value } }),
        t("common.saved")));
      return h("div", { class: "inline-form" }, f.el, btn, slot.el);
    } },
  ], cats);
  return section(t("products.categories"), list, h("h3", {}, t("products.new_category")),
    create.el);
}
