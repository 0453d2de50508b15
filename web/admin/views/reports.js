// Reports: sales and funnel SVG charts (fetched with the token, shown through blob: URLs) and
// tables: sales, flash-sale performance, top searches, inventory. Each table has a CSV export.
import {
  h, money, field, form, busy, noticeSlot, table, section, fetchBlob, saveBlob, query, label,
} from "../ui.js";
import { DICT } from "../i18n.js";

const MONEY = new Set(["revenue", "price", "discount", "average_order_value"]);
const RATE = new Set(["rate_from_previous", "rate_from_first"]);

function isoDay(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-`
    + `${String(d.getDate()).padStart(2, "0")}`;
}

export async function render(ctx, root) {
  const { api, t, session } = ctx;
  root.append(h("h1", {}, t("reports.title")));
  const today = new Date();
  const monthAgo = new Date(today.getTime() - 29 * 86_400_000);
  const from = field({ name: "from", label: t("common.from"), type: "date", value: isoDay(monthAgo) });
  const to = field({ name: "to", label: t("common.to"), type: "date", value: isoDay(today) });
  const gran = field({ name: "granularity", label: t("reports.granularity"), type: "select",
    options: ["day", "week", "month", "all"].map((g) => [g, t(`gran.${g}`)]) });
  const threshold = field({ name: "threshold", label: t("reports.threshold"), type: "int",
    value: 10 });
  const charts = h("div", { class: "charts" });
  const tables = h("div", {});
  const urls = [];

  function cellOf(name, value) {
    if (value === null || value === undefined) return "—";
    if (MONEY.has(name)) return money(value);
    if (RATE.has(name)) return `${(value * 100).toFixed(1)}%`;
    if (typeof value === "boolean") return t(value ? "common.yes" : "common.no");
    if (["state", "list", "step"].includes(name)) return label("val", value);
    return String(value);
  }

  function reportTable(rows) {
    const cols = rows.length ? Object.keys(rows[0]) : [];
    return table(cols.map((c) => ({
      label: DICT[`col.${c}`] ? t(`col.${c}`) : c, cell: (r) => cellOf(c, r[c]),
    })), rows);
  }

  async function chart(path, alt, testId) {
    const img = h("img", { alt, "data-test": testId, class: "chart" });
    const slot = noticeSlot();
    const box = h("figure", { class: "card chart-card" }, h("figcaption", {}, alt), img, slot.el);
    charts.append(box);
    await busy(null, slot, async () => {
      const blob = await fetchBlob(session, api, path);
      const url = URL.createObjectURL(blob);
      urls.push(url);
      img.src = url;
    });
  }

  async function tableBox(titleKey, path, params) {
    const slot = noticeSlot();
    const body = h("div", {});
    const csv = h("button", { type: "button", class: "secondary small" }, t("common.csv"));
    const name = path.split("/").pop();
    csv.addEventListener("click", () => busy(csv, slot, async () => {
      saveBlob(await fetchBlob(session, api, `${path}${query({ ...params, format: "csv" })}`),
        `${name}.csv`);
    }, t("common.downloaded", { name: `${name}.csv` })));
    tables.append(section(t(titleKey), h("div", { class: "row" }, csv), slot.el, body));
    const r = await busy(null, slot, () => api("GET", `${path}${query(params)}`));
    if (r) body.replaceChildren(reportTable(r.rows || []));
  }

  async function show(v) {
    urls.splice(0).forEach((u) => URL.revokeObjectURL(u));
    charts.replaceChildren();
    tables.replaceChildren();
    const period = { from: v.from, to: v.to };
    await Promise.all([
      chart(`/admin/reports/sales/chart.svg${query({ ...period, granularity: v.granularity })}`,
        t("reports.sales_chart"), "sales-chart"),
      chart(`/admin/reports/funnel/chart.svg${query(period)}`, t("reports.funnel_chart"),
        "funnel-chart"),
      tableBox("reports.sales", "/admin/reports/sales", { ...period, granularity: v.granularity }),
      tableBox("reports.funnel", "/admin/reports/funnel", period),
      tableBox("reports.flash", "/admin/reports/flash-sales", period),
      tableBox("reports.searches", "/admin/reports/searches", { ...period, limit: 10 }),
      tableBox("reports.inventory", "/admin/reports/inventory",
        { threshold: v.threshold, limit: 100 }),
    ]);
    return true;
  }

  const f = form({
    fields: [from, to, gran, threshold], submit: t("reports.show"), className: "filters",
    onSubmit: (v) => show(v), success: () => "",
  });
  root.append(section(t("reports.period"), f.el), charts, tables);
  await show({ from: from.input.value, to: to.input.value, granularity: "day",
    threshold: 10 });
}
