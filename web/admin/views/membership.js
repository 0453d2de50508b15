// Membership: the member level table (thresholds by spending, replaced as a whole), a member's
// level, points and ledger, and a staff points adjustment with a reason.
import {
  h, money, field, form, busy, noticeSlot, table, section, keyValues, when, label,
} from "../ui.js";

// One editable row of the level table: its number, name and threshold (yuan).
function levelRow(t, level) {
  const name = field({ name: "name", label: t("member.level_name"), value: level.name });
  const minSpent = field({ name: "min_spent", label: t("member.min_spent"), type: "money",
    value: (Number(level.min_spent || 0) / 100).toFixed(2),
    attrs: level.level === 0 ? { readonly: true } : {} });
  return { level: level.level, name, minSpent };
}

export async function render(ctx, root) {
  const { api, t } = ctx;
  root.append(h("h1", {}, t("member.title")));

  // ---- the level table ------------------------------------------------------------------
  const levelsBox = h("div", { "data-test": "levels" });
  const levelsSlot = noticeSlot();
  let rows = [];

  function drawLevels() {
    levelsBox.replaceChildren(table([
      { label: t("member.level"), cell: (r) => String(r.level) },
      { label: t("member.level_name"), cell: (r) => r.name.el },
      { label: t("member.min_spent"), cell: (r) => r.minSpent.el },
    ], rows));
    levelsBox.querySelectorAll("tbody tr").forEach((tr, i) => {
      tr.dataset.level = String(rows[i].level);
    });
    remove.disabled = rows.length <= 1;
  }

  async function loadLevels() {
    const r = await busy(null, levelsSlot, () => api("GET", "/admin/member-levels"));
    if (!r) return;
    rows = r.levels.map((l) => levelRow(t, l));
    drawLevels();
  }

  const add = h("button", { type: "button", class: "secondary" }, t("member.add_level"));
  add.addEventListener("click", () => {
    const last = rows[rows.length - 1];
    let next = 0;
    try { next = (last ? last.minSpent.get() : 0) + 100000; } catch { next = 100000; }
    rows.push(levelRow(t, { level: rows.length, name: "", min_spent: next }));
    drawLevels();
    rows[rows.length - 1].name.input.focus();
  });
  const remove = h("button", { type: "button", class: "secondary" }, t("member.remove_level"));
  remove.addEventListener("click", () => {
    if (rows.length > 1) { rows.pop(); drawLevels(); }
  });
  const save = h("button", { type: "button", "data-test": "save-levels" },
    t("member.save_levels"));
  save.addEventListener("click", async () => {
    let levels;
    try {
      levels = rows.map((r) => {
        r.name.error(""); r.minSpent.error("");
        let name;
        let minSpent;
        try { name = r.name.get(); } catch (err) { r.name.error(err.message); throw err; }
        try { minSpent = r.minSpent.get(); } catch (err) {
          r.minSpent.error(err.message); throw err;
        }
        return { level: r.level, name, min_spent: minSpent };
      });
    } catch (err) {
      levelsSlot.set("error", err.message);
      return;
    }
    const r = await busy(save, levelsSlot, () => api("PUT", "/admin/member-levels",
      { body: { levels } }), (res) => t("member.levels_saved", { n: res.levels.length }));
    if (r) { rows = r.levels.map((l) => levelRow(t, l)); drawLevels(); }
  });

  // ---- a member ---------------------------------------------------------------------------
  const memberBox = h("div", { "data-test": "member" });
  const lookupSlot = noticeSlot();
  const who = field({ name: "user_id", label: t("member.user_id"),
    value: ctx.params[0] || "" });
  const find = h("button", { type: "submit" }, t("member.find"));
  const lookup = h("form", { class: "inline-form", novalidate: true }, who.el, find);

  function ledgerTable(ledger) {
    return table([
      { label: t("member.time"), cell: (e) => when(e.created_at) },
      { label: t("member.delta"), cell: (e) => (e.delta > 0 ? `+${e.delta}` : String(e.delta)) },
      { label: t("member.reason"), cell: (e) => label("preason", e.reason) },
      { label: t("member.order"), cell: (e) => e.order_id || "—" },
      { label: t("member.note"), cell: (e) => e.note || "—" },
    ], ledger?.items || []);
  }

  function adjustForm(userId) {
    const delta = field({ name: "delta", label: t("member.adjust_delta"),
      attrs: { inputmode: "numeric", autocomplete: "off" } });
    const note = field({ name: "note", label: t("member.adjust_note"),
      attrs: { maxlength: 200 } });
    const f = form({
      fields: [delta, note], submit: t("member.adjust"), className: "adjust-points",
      onSubmit: (v, key) => {
        if (!/^[+-]?\d+$/.test(v.delta) || Number(v.delta) === 0) {
          const err = new Error(t("member.delta_invalid"));
          delta.error(err.message);
          throw err;
        }
        return api("POST", `/admin/members/${encodeURIComponent(userId)}/points`,
          { body: { delta: Number(v.delta), note: v.note }, key });
      },
      success: (r) => {
        setTimeout(() => showMember(userId, false), 0);
        return t("member.adjusted", {
          delta: r.entry.delta > 0 ? `+${r.entry.delta}` : r.entry.delta, balance: r.balance });
      },
    });
    f.el.dataset.test = "adjust-points";
    return f;
  }

  let adjust = null;
  async function showMember(userId, fresh) {
    const m = await busy(fresh ? find : null, lookupSlot,
      () => api("GET", `/admin/members/${encodeURIComponent(userId)}`));
    if (!m) return;
    if (fresh || !adjust) adjust = adjustForm(userId);
    const next = m.next_level
      ? t("member.next_line", { name: m.next_level.name, missing: money(m.next_level.missing) })
      : t("member.top");
    memberBox.replaceChildren(section(t("member.account", { id: m.user_id }),
      h("div", { "data-test": "member-summary" }, keyValues([
        [t("member.current_level"), `${m.level} · ${m.name}`],
        [t("member.spent"), money(m.spent)],
        [t("member.next_level"), next],
        [t("member.points"), h("span", { "data-test": "points" }, String(m.points))],
        [t("member.redeemed"), String(m.redeemed)],
      ])),
      h("h3", {}, t("member.adjust")), adjust.el,
      h("h3", {}, t("member.ledger")), ledgerTable(m.ledger)));
  }

  lookup.addEventListener("submit", (event) => {
    event.preventDefault();
    who.error("");
    let userId;
    try { userId = who.get(); } catch (err) { who.error(err.message); return; }
    showMember(userId, true);
  });

  root.append(
    section(t("member.levels"), h("p", { class: "muted" }, t("member.levels_hint")), levelsSlot.el,
      levelsBox, h("div", { class: "actions" }, add, remove, save)),
    section(t("member.lookup"), lookup, lookupSlot.el),
    memberBox);
  await loadLevels();
  if (ctx.params[0]) await showMember(ctx.params[0], true);
}
