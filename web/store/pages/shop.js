// Shopping: home, search, product, cart and checkout.
import { saleCard } from "./sale.js";

function flatCategories(items, depth = 0, out = []) {
  for (const c of items || []) {
    out.push({ id: c.id, name: c.name, depth });
    flatCategories(c.children, depth + 1, out);
  }
  return out;
}

function productCard(ctx, p) {
  const { h, t, money } = ctx;
  return h("a", { class: "card product-card", href: `#/product/${p.id}`, "data-product": p.id },
    h("div", { class: "thumb", "aria-hidden": "true" }, (p.name || "?").slice(0, 1)),
    h("div", { class: "pname" }, p.name),
    h("div", {}, h("span", { class: "price" }, t("price.from", { price: money(p.price_from) }))),
    h("div", { class: "muted small" }, p.available > 0 ? t("stock.left", { n: p.available }) : t("stock.none")));
}

export async function home(ctx) {
  const { h, t, api } = ctx;
  const [sales, cats, popular] = await Promise.all([
    api("GET", "/flash-sales?limit=20").catch(() => ({ items: [] })),
    api("GET", "/categories").catch(() => ({ items: [] })),
    api("GET", "/products?sort=sales&limit=8").catch(() => ({ items: [] })),
  ]);
  const cards = new Map(sales.items.map((s) => [s.id, saleCard(ctx, s)]));
  ctx.every(5000, async () => {
    try {
      const page = await api("GET", "/flash-sales?limit=20");
      for (const s of page.items || []) cards.get(s.id)?.updateSale(s);
    } catch { /* keep the last figures */ }
  });
  return h("div", { class: "home" },
    h("section", { "aria-labelledby": "sales-h" },
      h("h2", { id: "sales-h" }, t("home.sales")),
      sales.items.length ? h("div", { class: "grid sales" }, [...cards.values()])
        : h("p", { class: "muted card" }, t("home.noSales"))),
    h("section", { "aria-labelledby": "cat-h" },
      h("h2", { id: "cat-h" }, t("home.categories")),
      h("div", { class: "chips" }, cats.items.map((c) => h("a", { class: "chip", href: `#/search?category_id=${c.id}` }, c.name)))),
    h("section", { "aria-labelledby": "pop-h" },
      h("h2", { id: "pop-h" }, t("home.popular")),
      h("div", { class: "grid products" }, popular.items.map((p) => productCard(ctx, p)))));
}

export async function search(ctx, query) {
  const { h, t, api } = ctx;
  const params = new URLSearchParams();
  for (const k of ["q", "category_id", "tag", "min_price", "max_price", "in_stock", "sort", "cursor"]) {
    const v = query.get(k);
    if (v) params.set(k, v);
  }
  params.set("limit", "12");
  const apiParams = new URLSearchParams(params);
  // Prices are typed in yuan, sent in fen.
  for (const k of ["min_price", "max_price"]) {
    if (apiParams.get(k)) apiParams.set(k, String(Math.round(Number(apiParams.get(k)) * 100)));
  }
  const [page, cats] = await Promise.all([
    api("GET", `/products?${apiParams}`),
    api("GET", "/categories").catch(() => ({ items: [] })),
  ]);
  const catOptions = flatCategories(cats.items);
  const sel = (name, options, value) => h("select", { name },
    options.map(([v, label]) => h("option", { value: v, selected: String(v) === String(value || "") }, label)));
  const form = h("form", { class: "card filters", "data-test": "filters" },
    h("label", {}, t("search.q"), h("input", { type: "search", name: "q", value: query.get("q") || "" })),
    h("label", {}, t("search.category"), sel("category_id",
      [["", t("search.all")], ...catOptions.map((c) => [c.id, `${"— ".repeat(c.depth)}${c.name}`])], query.get("category_id"))),
    h("label", {}, t("search.min"), h("input", { type: "number", name: "min_price", min: 0, step: "0.01", inputmode: "decimal", value: query.get("min_price") || "" })),
    h("label", {}, t("search.max"), h("input", { type: "number", name: "max_price", min: 0, step: "0.01", inputmode: "decimal", value: query.get("max_price") || "" })),
    h("label", {}, t("search.sort"), sel("sort",
      ["relevance", "price_asc", "price_desc", "newest", "sales"].map((s) => [s, t(`sort.${s}`)]), query.get("sort"))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "in_stock", checked: query.get("in_stock") === "true" }), t("search.inStock")),
    h("button", { type: "submit" }, t("search.apply")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const k of ["q", "category_id", "min_price", "max_price", "sort"]) {
      const v = form[k].value.trim();
      if (v && !(k === "sort" && v === "relevance")) next.set(k, v);
    }
    if (form.in_stock.checked) next.set("in_stock", "true");
    if (query.get("tag")) next.set("tag", query.get("tag"));
    ctx.go(`#/search?${next}`);
  });
  const nextParams = new URLSearchParams(params);
  nextParams.delete("limit");
  const firstParams = new URLSearchParams(nextParams);
  firstParams.delete("cursor");
  if (page.next_cursor) nextParams.set("cursor", page.next_cursor);
  return h("div", { class: "search-page" },
    h("h1", {}, t("search.title")),
    query.get("tag") ? h("p", {}, t("search.tag", { tag: query.get("tag") }), " ",
      h("a", { href: "#/search" }, t("search.clear"))) : null,
    form,
    h("p", { class: "muted", "data-test": "result-count" }, t("search.count", { n: page.items.length })),
    page.items.length ? h("div", { class: "grid products", "data-test": "results" }, page.items.map((p) => productCard(ctx, p)))
      : h("p", { class: "card muted" }, t("search.none")),
    h("div", { class: "pager" },
      query.get("cursor") ? h("a", { class: "button secondary", href: `#/search?${firstParams}` }, t("page.first")) : null,
      page.next_cursor ? h("a", { class: "button secondary", href: `#/search?${nextParams}`, "data-test": "next-page" }, t("page.next")) : null));
}

function skuLabel(sku) {
  const attrs = Object.entries(sku.attributes || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  return attrs || `#${sku.id}`;
}

function bestPrice(sku) {
  const options = [sku.price];
  if (sku.promotion?.price != null) options.push(sku.promotion.price);
  return Math.min(...options);
}

export async function product(ctx, productId) {
  const { h, t, api, money, busy } = ctx;
  const p = await api("GET", `/products/${productId}`);
  const skus = p.skus || [];
  let chosen = skus.find((s) => s.available > 0) || skus[0];
  const priceBox = h("div", { class: "price-box", "data-test": "price" });
  const stock = h("div", { class: "muted small" });
  const qty = h("input", { type: "number", min: 1, max: 99, value: 1, name: "qty", "aria-label": t("cart.qty"), class: "qty" });
  const add = h("button", { type: "button", "data-test": "add-to-cart" }, t("product.add"));
  const skuButtons = skus.map((s) => {
    const b = h("button", { type: "button", class: "secondary sku", "data-sku": s.id, "aria-pressed": "false" }, skuLabel(s));
    b.addEventListener("click", () => { chosen = s; update(); });
    return b;
  });
  function update() {
    for (const b of skuButtons) b.setAttribute("aria-pressed", String(Number(b.dataset.sku) === chosen?.id));
    if (!chosen) return;
    const price = bestPrice(chosen);
    const parts = [h("span", { class: "price big" }, money(price))];
    if (price < chosen.price) parts.push(" ", h("s", { class: "muted" }, money(chosen.price)));
    if (chosen.promotion) parts.push(" ", h("span", { class: "badge live" }, t("product.promo")));
    if (chosen.member_price != null) parts.push(h("div", { class: "small" }, t("product.member", { price: money(chosen.member_price) })));
    priceBox.replaceChildren(...parts);
    stock.textContent = chosen.available > 0 ? t("stock.left", { n: chosen.available }) : t("stock.none");
    add.disabled = chosen.available <= 0;
  }
  update();
  add.addEventListener("click", () => {
    if (!ctx.requireSignIn()) return;
    const n = Math.max(1, Math.min(99, Number(qty.value) || 1));
    busy(add, () => api("POST", "/cart/items", { body: { sku_id: chosen.id, qty: n } }),
      { ok: t("product.added") });
  });
  const recs = h("div", { class: "grid products" });
  const recSection = h("section", { hidden: true }, h("h2", {}, t("product.recs")), recs);
  api("GET", `/products/${productId}/recommendations?limit=6`).then((r) => {
    recSection.hidden = !(r.items || []).length;
    recs.replaceChildren(...(r.items || []).map((x) => productCard(ctx, { price_from: x.price_from ?? x.price, ...x })));
  }).catch(() => {});
  const path = p.category?.path || [];
  return h("article", { class: "product-page" },
    h("nav", { class: "crumbs small", "aria-label": t("product.path") },
      h("a", { href: "#/" }, t("nav.home")),
      path.flatMap((c) => [" / ", h("a", { href: `#/search?category_id=${c.id}` }, c.name)])),
    h("div", { class: "card product-main" },
      h("div", { class: "thumb large", "aria-hidden": "true" }, (p.name || "?").slice(0, 1)),
      h("div", { class: "product-info" },
        h("h1", {}, p.name),
        priceBox,
        skus.length > 1 ? h("div", { class: "sku-list", role: "group", "aria-label": t("product.sku") }, skuButtons) : null,
        stock,
        h("div", { class: "add-row" }, qty, add),
        p.description ? h("p", { class: "desc" }, p.description) : null,
        p.tags?.length ? h("div", { class: "chips" }, p.tags.map((tag) => h("a", { class: "chip", href: `#/search?tag=${encodeURIComponent(tag)}` }, tag))) : null)),
    recSection);
}

export async function cart(ctx) {
  const { h, t, api, money, busy } = ctx;
  if (!ctx.requireSignIn()) return null;
  const c = await api("GET", "/cart");
  const reload = () => ctx.rerender();
  if (!c.items.length) {
    return h("section", {}, h("h1", {}, t("cart.title")),
      h("p", { class: "card muted", "data-test": "cart-empty" }, t("cart.empty")), h("a", { class: "button", href: "#/search" }, t("cart.shop")));
  }
  const lines = c.items.map((it) => {
    const qty = h("input", { type: "number", min: 1, max: 99, value: it.qty, "aria-label": t("cart.qty"), class: "qty" });
    const save = h("button", { type: "button", class: "secondary" }, t("cart.update"));
    save.addEventListener("click", () => busy(save, async () => {
      await api("PUT", `/cart/items/${it.sku_id}`, { body: { qty: Math.max(1, Math.min(99, Number(qty.value) || 1)) } });
      reload();
    }, { ok: t("cart.updated") }));
    const remove = h("button", { type: "button", class: "secondary" }, t("cart.remove"));
    remove.addEventListener("click", () => busy(remove, async () => {
      await api("DELETE", `/cart/items/${it.sku_id}`); reload();
    }, { ok: t("cart.removed") }));
    return h("div", { class: "card cart-line", "data-sku": it.sku_id },
      h("div", { class: "grow" },
        h("a", { href: `#/product/${it.product_id}` }, it.name),
        h("div", { class: "muted small" }, skuLabel(it)),
        h("div", {}, h("span", { class: "price" }, money(it.unit_price)),
          it.list_price > it.unit_price ? [" ", h("s", { class: "muted small" }, money(it.list_price))] : null),
        !it.purchasable ? h("div", { class: "notice error small" }, t(`err.${it.problem}`) === `err.${it.problem}` ? t("cart.problem") : t(`err.${it.problem}`)) : null),
      h("div", { class: "line-actions" }, qty, save, remove,
        h("span", { class: "price" }, money(it.line_total))));
  });
  const ok = c.items.every((it) => it.purchasable);
  return h("section", {},
    h("h1", {}, t("cart.title")),
    lines,
    h("div", { class: "card total-bar" },
      h("span", {}, t("cart.total"), " ", h("span", { class: "price big", "data-test": "cart-total" }, money(c.total))),
      ok ? h("a", { class: "button", href: "#/checkout", "data-test": "to-checkout" }, t("cart.checkout"))
        : h("span", { class: "muted" }, t("cart.fix"))));
}

const FEES = { standard: 800, express: 2000, pickup: 0 };

// An estimate of the totals shown before placing the order (the API answers the real ones).
function couponOff(rules, goods) {
  if (rules.kind === "threshold") return goods >= rules.threshold ? rules.amount : 0;
  if (rules.kind === "fixed") return Math.min(rules.amount, goods);
  if (rules.kind === "percent") {
    const off = Math.floor(goods * rules.percent_off / 100);
    return rules.max_discount ? Math.min(off, rules.max_discount) : off;
  }
  return 0;
}

export function addressForm(ctx, onSaved) {
  const { h, t, api, busy } = ctx;
  const field = (name, label, attrs = {}) => h("label", {}, label, h("input", { name, required: true, maxlength: 50, ...attrs }));
  const form = h("form", { class: "address-form", "data-test": "address-form" },
    h("h3", {}, t("addr.add")),
    h("div", { class: "form-grid" },
      field("recipient", t("addr.recipient")),
      field("phone", t("addr.phone"), { type: "tel", inputmode: "tel", pattern: "^\\+?[0-9 \\-]{5,20}$" }),
      field("province", t("addr.province")),
      field("city", t("addr.city")),
      field("district", t("addr.district")),
      field("line", t("addr.line"), { maxlength: 200 }),
      h("label", {}, t("addr.postal"), h("input", { name: "postal_code", maxlength: 12 }))),
    h("button", { type: "submit" }, t("addr.save")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = {};
    for (const k of ["recipient", "phone", "province", "city", "district", "line"]) body[k] = form[k].value.trim();
    if (form.postal_code.value.trim()) body.postal_code = form.postal_code.value.trim();
    busy(form.querySelector("button[type=submit]"), async () => {
      const saved = await api("POST", "/me/addresses", { body });
      onSaved(saved);
    }, { ok: t("addr.saved") });
  });
  return form;
}

export function addressText(a) {
  return `${a.recipient} ${a.phone} · ${a.province} ${a.city} ${a.district || ""} ${a.line}`;
}

export async function checkout(ctx) {
  const { h, t, api, money, newKey, busy } = ctx;
  if (!ctx.requireSignIn()) return null;
  const [c, addrs, wallet, member] = await Promise.all([
    api("GET", "/cart"),
    api("GET", "/me/addresses"),
    api("GET", "/me/coupons?state=available").catch(() => ({ items: [] })),
    api("GET", "/me/membership").catch(() => ({ points: 0 })),
  ]);
  if (!c.items.length) { ctx.go("#/cart"); return null; }
  const addresses = addrs.items || addrs || [];
  let addressId = (addresses.find((a) => a.is_default) || addresses[0])?.id;
  const addrBox = h("div", { class: "addr-list", role: "radiogroup", "aria-label": t("co.address") });
  function drawAddresses() {
    addrBox.replaceChildren(...addresses.map((a) => {
      const input = h("input", { type: "radio", name: "address", value: a.id, checked: a.id === addressId });
      input.addEventListener("change", () => { addressId = a.id; });
      return h("label", { class: "check addr" }, input, addressText(a));
    }));
    if (!addresses.length) addrBox.append(h("p", { class: "muted" }, t("addr.none")));
  }
  drawAddresses();
  const newAddr = addressForm(ctx, (saved) => {
    addresses.unshift(saved); addressId = saved.id; drawAddresses();
    newAddr.reset(); details.open = false;
  });
  const details = h("details", { open: !addresses.length }, h("summary", {}, t("addr.add")), newAddr);

  const delivery = h("select", { name: "delivery", "data-test": "delivery" },
    ["standard", "express", "pickup"].map((d) => h("option", { value: d }, t(`delivery.${d}`))));
  const coupons = (wallet.items || []).map((cp) => {
    const box = h("input", { type: "checkbox", value: cp.id, "data-coupon": cp.id });
    box.addEventListener("change", recompute);
    return { cp, box };
  });
  const maxPoints = Math.max(0, member.points || 0);
  const points = h("input", { type: "number", min: 0, max: maxPoints, value: 0, name: "points", "data-test": "points" });
  points.addEventListener("input", recompute);
  delivery.addEventListener("change", recompute);
  const totals = h("dl", { class: "totals", "data-test": "totals" });
  function recompute() {
    const goods = c.total;
    let off = 0;
    for (const { cp, box } of coupons) if (box.checked) off += couponOff(cp.rules, goods);
    off = Math.min(off, goods);
    const left = goods - off;
    const pts = Math.max(0, Math.min(Number(points.value) || 0, maxPoints, Math.floor(left / 2)));
    const afterPts = left - pts;
    const d = delivery.value;
    const fee = d === "standard" && left >= 9900 ? 0 : FEES[d];
    totals.replaceChildren(
      h("dt", {}, t("co.goods")), h("dd", {}, money(goods)),
      h("dt", {}, t("co.discount")), h("dd", {}, `-${money(off)}`),
      h("dt", {}, t("co.points")), h("dd", {}, `-${money(pts)}`),
      h("dt", {}, t("co.shipping")), h("dd", {}, money(fee)),
      h("dt", {}, t("co.total")), h("dd", { class: "price big" }, money(afterPts + fee)));
  }
  recompute();
  const place = h("button", { type: "button", class: "big", "data-test": "place-order" }, t("co.place"));
  let key = null;
  place.addEventListener("click", () => {
    if (!addressId && delivery.value !== "pickup") { ctx.notify("error", t("co.needAddress")); return; }
    key = key || newKey();
    const body = { delivery: delivery.value };
    if (addressId) body.address_id = addressId;
    const chosen = coupons.filter((x) => x.box.checked).map((x) => x.cp.id);
    if (chosen.length) body.coupons = chosen;
    const pts = Number(points.value) || 0;
    if (pts > 0) body.points = pts;
    busy(place, async () => {
      try {
        const answer = await api("POST", "/checkout", { body, key });
        key = null;
        ctx.notify("ok", t("co.placed", { total: money(answer.total) }));
        ctx.go(`#/order/${answer.order_id}`);
      } catch (err) {
        // A network failure keeps the key: a retry replays the order instead of placing two.
        if (!(err.code === "network" || err.status >= 500)) key = null;
        throw err;
      }
    });
  });
  return h("section", { class: "checkout" },
    h("h1", {}, t("co.title")),
    h("div", { class: "card" }, h("h2", {}, t("co.items")),
      h("ul", { class: "plain" }, c.items.map((it) => h("li", {}, `${it.name} (${skuLabel(it)}) × ${it.qty} — `, h("span", { class: "price" }, money(it.line_total)))))),
    h("div", { class: "card" }, h("h2", {}, t("co.address")), addrBox, details),
    h("div", { class: "card" }, h("h2", {}, t("co.delivery")), delivery),
    h("div", { class: "card" }, h("h2", {}, t("co.coupons")),
      coupons.length ? coupons.map(({ cp, box }) => h("label", { class: "check" }, box, `${cp.rules.name} — ${couponRule(ctx, cp.rules)}`))
        : h("p", { class: "muted" }, t("co.noCoupons")),
      h("label", {}, t("co.usePoints", { n: maxPoints }), points)),
    h("div", { class: "card" }, h("h2", {}, t("co.summary")), totals, h("p", { class: "muted small" }, t("co.estimate")), place));
}

export function couponRule(ctx, r) {
  const { t, money } = ctx;
  if (r.kind === "threshold") return t("coupon.threshold", { threshold: money(r.threshold), amount: money(r.amount) });
  if (r.kind === "percent") return t("coupon.percent", { pct: r.percent_off, max: r.max_discount ? money(r.max_discount) : "-" });
  return t("coupon.fixed", { amount: money(r.amount) });
}
