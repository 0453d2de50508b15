// Coupons: list templates by status with paging, create, edit before the claim window opens,
// end claims, push to a segment.
import {
  h, money, field, form, busy, noticeSlot, table, section, when, label, query, isoToLocal,
} from "../ui.js";

export async function render(ctx, root) {
  const { api, t } = ctx;
  root.append(h("h1", {}, t("coupons.title")));
  const listBox = h("div", {});
  const panel = h("div", {});
  const listSlot = noticeSlot();
  const more = h("button", { type: "button", class: "secondary", hidden: true }, t("common.more"));
  const status = field({ name: "status", label: t("common.status"), type: "select",
    options: [["", t("common.all")], ["active", t("cstatus.active")], ["ended", t("cstatus.ended")]] });
  let items = [];
  let cursor = null;

  function rule(c) {
    if (c.kind === "percent") {
      return `${c.percent_off}%${c.max_discount ? ` ≤ ${money(c.max_discount)}` : ""}`;
    }
    if (c.kind === "threshold") return `${money(c.threshold)} − ${money(c.amount)}`;
    return `− ${money(c.amount)}`;
  }

  function actions(c) {
    const slot = noticeSlot();
    const out = [];
    if (c.status !== "ended") {
      const end = h("button", { type: "button", class: "danger" }, t("coupons.end"));
      end.addEventListener("click", async () => {
        const r = await busy(end, slot, () => api("POST", `/admin/coupons/${c.id}/end`),
          t("coupons.ended", { id: c.id }));
        if (r) load(false);
      });
      const push = h("button", { type: "button", class: "secondary",
        onclick: () => showPush(c) }, t("coupons.push"));
      // Offered while active: the API refuses (claim_started) once the window has opened.
      const edit = h("button", { type: "button", class: "secondary",
        onclick: () => showEdit(c) }, t("coupons.edit"));
      out.push(edit, push, end);
    }
    return h("div", { class: "actions" }, out, slot.el);
  }

  function draw() {
    listBox.replaceChildren(table([
      { label: t("common.id"), cell: (c) => String(c.id) },
      { label: t("common.name"), cell: (c) => c.name },
      { label: t("coupons.kind"), cell: (c) => `${label("kind", c.kind)} ${rule(c)}` },
      { label: t("coupons.window"), cell: (c) => `${when(c.claim_starts_at)} – ${when(c.claim_ends_at)}` },
      { label: t("coupons.total"), cell: (c) => `${c.total} / ${c.per_user}` },
      { label: t("common.status"), cell: (c) => h("span", { class: `badge ${c.status}` },
        label("cstatus", c.status)) },
      { label: t("common.actions"), cell: actions },
    ], items));
    more.hidden = !cursor;
  }

  async function load(append) {
    const page = await busy(null, listSlot, () => api("GET", `/admin/coupons${query({
      status: status.input.value, cursor: append ? cursor : undefined })}`));
    if (!page) return;
    items = append ? items.concat(page.items) : page.items;
    cursor = page.next_cursor;
    draw();
  }
  status.input.addEventListener("change", () => load(false));
  more.addEventListener("click", () => load(true));

  function showPush(c) {
    const kind = field({ name: "kind", label: t("coupons.segment"), type: "select",
      options: ["all_users", "level_at_least", "ordered_since", "user_ids"]
        .map((k) => [k, t(`seg.${k}`)]) });
    const level = field({ name: "level", label: t("coupons.level"), type: "int", optional: true });
    const since = field({ name: "since", label: t("coupons.since"), type: "datetime",
      optional: true });
    const ids = field({ name: "user_ids", label: t("coupons.user_ids"), optional: true });
    const sync = () => {
      level.el.hidden = kind.input.value !== "level_at_least";
      since.el.hidden = kind.input.value !== "ordered_since";
      ids.el.hidden = kind.input.value !== "user_ids";
    };
    kind.input.addEventListener("change", sync);
    sync();
    const f = form({
      fields: [kind, level, since, ids], submit: t("coupons.push"),
      onSubmit: (v, key) => {
        let body;
        if (v.kind === "user_ids") {
          body = { user_ids: (v.user_ids || "").split(/[,，\s]+/).filter(Boolean) };
        } else if (v.kind === "level_at_least") {
          body = { segment: { kind: v.kind, level: v.level ?? 0 } };
        } else if (v.kind === "ordered_since") {
          body = { segment: { kind: v.kind, since: v.since } };
        } else body = { segment: { kind: "all_users" } };
        return api("POST", `/admin/coupons/${c.id}/push`, { body, key });
      },
      success: (r) => t("coupons.pushed", { issued: r.issued, already: r.already_issued,
        sold_out: r.sold_out, limit: r.limit_reached }),
    });
    panel.replaceChildren(section(t("coupons.push_title", { id: c.id }), f.el,
      h("button", { type: "button", class: "secondary", onclick: () => panel.replaceChildren() },
        t("common.cancel"))));
    panel.scrollIntoView({ block: "start" });
  }

  // Edit a template: only the fields whose input changed are sent (PATCH); the kind stays.
  function showEdit(c) {
    const yuan = (fen) => (fen === null || fen === undefined ? undefined
      : (Number(fen) / 100).toFixed(2));
    const specs = [
      field({ name: "name", label: t("common.name"), value: c.name }),
    ];
    if (c.kind === "percent") {
      specs.push(
        field({ name: "percent_off", label: t("coupons.percent_off"), type: "int",
          value: c.percent_off }),
        field({ name: "max_discount", label: t("coupons.max_discount"), type: "money",
          optional: true, value: yuan(c.max_discount) }));
    } else {
      specs.push(field({ name: "amount", label: t("coupons.amount"), type: "money",
        value: yuan(c.amount) }));
      if (c.kind === "threshold") {
        specs.push(field({ name: "threshold", label: t("coupons.threshold"), type: "money",
          value: yuan(c.threshold) }));
      }
    }
    for (const [name, key] of [["claim_starts_at", "coupons.claim_starts"],
      ["claim_ends_at", "coupons.claim_ends"], ["valid_from", "coupons.valid_from"],
      ["valid_until", "coupons.valid_until"]]) {
      specs.push(field({ name, label: t(key), type: "datetime", value: isoToLocal(c[name]) }));
    }
    specs.push(
      field({ name: "total", label: t("coupons.total"), type: "int", value: c.total }),
      field({ name: "per_user", label: t("coupons.per_user"), type: "int", value: c.per_user }),
      field({ name: "stackable", label: t("coupons.stackable"), type: "check",
        value: c.stackable }));
    const raw = (f) => (f.input.type === "checkbox" ? f.input.checked : f.input.value.trim());
    const initial = new Map(specs.map((f) => [f.name, raw(f)]));
    const f = form({
      fields: specs, submit: t("common.save"), className: "edit-coupon",
      onSubmit: (v) => {
        const body = {};
        for (const s of specs) {
          if (raw(s) === initial.get(s.name)) continue;
          body[s.name] = v[s.name] === undefined ? null : v[s.name];
        }
        return api("PATCH", `/admin/coupons/${c.id}`, { body });
      },
      success: (r) => {
        setTimeout(() => load(false), 0);
        specs.forEach((s) => initial.set(s.name, raw(s)));
        return t("coupons.saved", { id: r.id });
      },
    });
    f.el.dataset.test = "edit-coupon";
    panel.replaceChildren(section(t("coupons.edit_title", { id: c.id }), f.el,
      h("button", { type: "button", class: "secondary", onclick: () => panel.replaceChildren() },
        t("common.cancel"))));
    panel.scrollIntoView({ block: "start" });
  }

  const kind = field({ name: "kind", label: t("coupons.kind"), type: "select",
    options: ["threshold", "fixed", "percent"].map((k) => [k, t(`kind.${k}`)]) });
  const amount = field({ name: "amount", label: t("coupons.amount"), type: "money",
    optional: true });
  const threshold = field({ name: "threshold", label: t("coupons.threshold"), type: "money",
    optional: true });
  const percent = field({ name: "percent_off", label: t("coupons.percent_off"), type: "int",
    optional: true });
  const maxDiscount = field({ name: "max_discount", label: t("coupons.max_discount"),
    type: "money", optional: true });
  const syncKind = () => {
    const k = kind.input.value;
    amount.el.hidden = k === "percent";
    threshold.el.hidden = k !== "threshold";
    percent.el.hidden = k !== "percent";
    maxDiscount.el.hidden = k !== "percent";
  };
  kind.input.addEventListener("change", syncKind);
  syncKind();
  const create = form({
    fields: [
      field({ name: "name", label: t("common.name") }), kind, amount, threshold, percent,
      maxDiscount,
      field({ name: "claim_starts_at", label: t("coupons.claim_starts"), type: "datetime" }),
      field({ name: "claim_ends_at", label: t("coupons.claim_ends"), type: "datetime" }),
      field({ name: "valid_from", label: t("coupons.valid_from"), type: "datetime" }),
      field({ name: "valid_until", label: t("coupons.valid_until"), type: "datetime" }),
      field({ name: "total", label: t("coupons.total"), type: "int" }),
      field({ name: "per_user", label: t("coupons.per_user"), type: "int", value: 1 }),
      field({ name: "stackable", label: t("coupons.stackable"), type: "check" }),
    ],
    submit: t("common.create"),
    onSubmit: (v, key) => {
      const body = { ...v };
      if (v.kind === "percent") { delete body.amount; delete body.threshold; }
      else { delete body.percent_off; delete body.max_discount; }
      if (v.kind === "fixed") delete body.threshold;
      return api("POST", "/admin/coupons", { body, key });
    },
    success: (r) => { setTimeout(() => load(false), 0); return t("coupons.created", { id: r.id }); },
  });

  root.append(section(t("coupons.title"), h("div", { class: "inline-form" }, status.el),
    listSlot.el, listBox, more), panel, section(t("coupons.new"), create.el));
  await load(false);
}
