// After-sales: every request the caller made, across all their orders, newest first, with the
// order it belongs to, its type, status and the staff's note (keyset pages of 10).
import { accountNav } from "./account.js";

export async function mine(ctx, query) {
  const { h, t, api } = ctx;
  if (!ctx.requireSignIn()) return null;
  const cursor = query.get("cursor");
  const page = await api("GET", `/me/after-sales?limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
  const locale = ctx.i18n.lang === "zh" ? "zh-CN" : "en";
  const when = (iso) => (iso ? new Date(iso).toLocaleString(locale) : "");
  const label = (prefix, value) => (t(`${prefix}${value}`) === `${prefix}${value}` ? value : t(`${prefix}${value}`));
  const rows = (page.items || []).map((r) => h("div", { class: "card as-row", "data-request": r.id, "data-status": r.status },
    h("div", { class: "row-head" },
      h("strong", { "data-test": "as-type" }, label("as.", r.type)),
      h("span", { class: `badge as-${r.status}`, "data-test": "as-status" }, label("as.status.", r.status))),
    h("div", { class: "small" }, t("asl.order"), " ",
      h("a", { href: `#/order/${encodeURIComponent(r.order_id)}`, "data-test": "as-order" }, r.order_id)),
    r.reason ? h("div", { class: "small" }, t("asl.reason", { reason: r.reason })) : null,
    h("div", { class: "muted small" }, t("asl.created", { at: when(r.created_at) }),
      r.decided_at ? [" · ", t("asl.decided", { at: when(r.decided_at) })] : null),
    r.note ? h("div", { class: "notice info small", "data-test": "as-note" }, t("as.note", { note: r.note }))
      : (r.status === "requested" ? h("div", { class: "muted small" }, t("asl.waiting")) : null)));
  return h("section", { "data-test": "after-sales-page" },
    h("h1", {}, t("as.mine")),
    accountNav(ctx, "after-sales"),
    rows.length ? h("div", { class: "list", "data-test": "as-list" }, rows)
      : h("div", { class: "card" }, h("p", { class: "muted", "data-test": "as-empty" }, t("as.none")),
        h("p", { class: "small" }, t("asl.how"), " ", h("a", { href: "#/orders" }, t("nav.orders")))),
    h("div", { class: "pager" },
      cursor ? h("a", { class: "button secondary", href: "#/after-sales" }, t("page.first")) : null,
      page.next_cursor ? h("a", { class: "button secondary", "data-test": "next-page",
        href: `#/after-sales?cursor=${encodeURIComponent(page.next_cursor)}` }, t("page.next")) : null));
}
