// The audit log: filters (kind, actor, target, time, status) and cursor paging.
import { h, field, form, busy, table, section, when, label, query } from "../ui.js";

const KINDS = ["staff_action", "login", "permission_denied", "payment_callback"];

export async function render(ctx, root) {
  const { api, t } = ctx;
  root.append(h("h1", {}, t("audit.title")));
  const listBox = h("div", {});
  const more = h("button", { type: "button", class: "secondary", hidden: true }, t("common.more"));
  let items = [];
  let cursor = null;
  let filters = {};

  function draw() {
    listBox.replaceChildren(table([
      { label: t("audit.at"), cell: (e) => when(e.at) },
      { label: t("audit.kind"), cell: (e) => label("akind", e.kind) },
      { label: t("audit.actor"), cell: (e) => `${e.actor || "—"}${e.actor_role
        ? ` (${label("role", e.actor_role)})` : ""}` },
      { label: t("audit.request"), cell: (e) => `${e.method || ""} ${e.path || ""}`.trim() || "—" },
      { label: t("audit.outcome"), cell: (e) => `${e.status ?? ""} ${e.outcome || ""}`.trim() },
      { label: t("audit.target"), cell: (e) => h("code", {}, JSON.stringify(e.target ?? null)) },
      { label: t("audit.details"), cell: (e) => h("code", { class: "details" },
        JSON.stringify(e.details ?? {})) },
    ], items));
    more.hidden = !cursor;
  }
  async function load(append) {
    const page = await api("GET", `/admin/audit${query({ ...filters,
      cursor: append ? cursor : undefined, limit: 50 })}`);
    items = append ? items.concat(page.items) : page.items;
    cursor = page.next_cursor;
    draw();
  }
  more.addEventListener("click", () => busy(more, null, () => load(true)));
  const f = form({
    fields: [
      field({ name: "kind", label: t("audit.kind"), type: "select",
        options: [["", t("common.all")], ...KINDS.map((k) => [k, t(`akind.${k}`)])] }),
      field({ name: "actor", label: t("audit.actor"), optional: true }),
      field({ name: "target", label: t("audit.target"), optional: true }),
      field({ name: "from", label: t("common.from"), type: "datetime", optional: true }),
      field({ name: "to", label: t("common.to"), type: "datetime", optional: true }),
    ],
    submit: t("common.search"), className: "filters",
    onSubmit: async (v) => { filters = v; await load(false); return true; },
    success: () => "",
  });
  root.append(section(t("audit.title"), f.el, listBox, more));
  await busy(null, f.slot, () => load(false));
}
