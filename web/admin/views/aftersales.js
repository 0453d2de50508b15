// After-sales requests: list by status with paging; approve (optional note) or reject (note).
import { h, field, busy, noticeSlot, table, section, when, label, query } from "../ui.js";

export async function render(ctx, root) {
  const { api, t } = ctx;
  root.append(h("h1", {}, t("as.title")));
  const status = field({ name: "status", label: t("common.status"), type: "select",
    value: "requested",
    options: [["", t("common.all")], ...["requested", "approved", "rejected"]
      .map((s) => [s, t(`asstatus.${s}`)])] });
  const listBox = h("div", {});
  const listSlot = noticeSlot();
  const more = h("button", { type: "button", class: "secondary", hidden: true }, t("common.more"));
  let items = [];
  let cursor = null;

  function decide(r) {
    if (r.status !== "requested") return r.note || "—";
    const note = field({ name: "note", label: t("as.note"), optional: true });
    const slot = noticeSlot();
    const approve = h("button", { type: "button" }, t("as.approve"));
    const reject = h("button", { type: "button", class: "danger" }, t("as.reject"));
    approve.addEventListener("click", async () => {
      const text = note.input.value.trim();
      const done = await busy(approve, slot, () => api("POST",
        `/admin/after-sales/${r.id}/approve`, { body: text ? { note: text } : undefined }),
      t("as.approved", { id: r.id }));
      if (done) load(false);
    });
    reject.addEventListener("click", async () => {
      const text = note.input.value.trim();
      note.error("");
      if (!text) { note.error(t("as.note_required")); note.input.focus(); return; }
      const done = await busy(reject, slot, () => api("POST",
        `/admin/after-sales/${r.id}/reject`, { body: { note: text } }),
      t("as.rejected", { id: r.id }));
      if (done) load(false);
    });
    return h("div", { class: "actions" }, note.el, approve, reject, slot.el);
  }

  function draw() {
    listBox.replaceChildren(table([
      { label: t("common.id"), cell: (r) => String(r.id) },
      { label: t("orders.title"), cell: (r) => h("a", {
        href: `#/orders/${encodeURIComponent(r.order_id)}` }, r.order_id) },
      { label: t("as.type"), cell: (r) => label("astype", r.type) },
      { label: t("orders.reason"), cell: (r) => r.reason },
      { label: t("orders.created"), cell: (r) => when(r.created_at) },
      { label: t("common.status"), cell: (r) => h("span", { class: `badge ${r.status}` },
        label("asstatus", r.status)) },
      { label: t("common.actions"), cell: decide },
    ], items));
    more.hidden = !cursor;
  }
  async function load(append) {
    const page = await busy(null, listSlot, () => api("GET", `/admin/after-sales${query({
      status: status.input.value, cursor: append ? cursor : undefined })}`));
    if (!page) return;
    items = append ? items.concat(page.items) : page.items;
    cursor = page.next_cursor;
    draw();
  }
  status.input.addEventListener("change", () => load(false));
  more.addEventListener("click", () => load(true));
  root.append(section(t("as.title"), h("div", { class: "inline-form" }, status.el), listSlot.el,
    listBox, more));
  await load(false);
}
