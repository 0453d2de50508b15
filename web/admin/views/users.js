// Users and roles: look a user up by id, e-mail or phone; change the role (the API allows
// admins only and says why it refuses).
import {
  h, field, form, busy, noticeSlot, section, keyValues, when, label, query,
} from "../ui.js";

const ROLES = ["customer", "member", "staff", "admin"];
// Something typed like a phone number: digits with an optional +, spaces, dashes, brackets.
const PHONE_LIKE = /^\+?[\d\s().-]{5,}$/;

// The look-ups to try in turn: an e-mail by log-in; a phone-like text by log-in first, then as
// an id (ids may be digits too); anything else as an id.
function lookups(raw) {
  const byLogin = `/admin/users${query({ login: raw })}`;
  const byId = `/admin/users/${encodeURIComponent(raw)}`;
  if (raw.includes("@")) return [byLogin];
  return PHONE_LIKE.test(raw) ? [byLogin, byId] : [byId];
}

async function findUser(api, raw) {
  const paths = lookups(raw);
  for (const [i, path] of paths.entries()) {
    try {
      return await api("GET", path);
    } catch (err) {
      const last = i === paths.length - 1;
      if (last || ![404, 422].includes(err?.status)) throw err;
    }
  }
  return undefined;
}

export async function render(ctx, root) {
  const { api, t } = ctx;
  root.append(h("h1", {}, t("users.title")));
  const box = h("div", {});
  const lookup = form({
    fields: [field({ name: "user_id", label: t("users.lookup_any"),
      value: ctx.params[0] || "", attrs: { autocomplete: "off" } })],
    submit: t("users.find"), className: "inline-form lookup",
    onSubmit: async (v) => {
      const user = await findUser(api, v.user_id);
      show(user);
      // Kept in the address, so a reload or a language switch shows the same user.
      history.replaceState(null, "", `#/users/${encodeURIComponent(user.user_id)}`);
      return user;
    },
    success: () => "",
  });

  function show(user) {
    const info = keyValues([
      [t("common.id"), user.user_id],
      [t("users.email"), user.email],
      [t("users.phone"), user.phone],
      [t("users.nickname"), user.nickname],
      [t("users.role"), h("span", { "data-test": "role" }, label("role", user.role))],
      [t("users.created"), when(user.created_at)],
    ]);
    const role = field({ name: "role", label: t("users.role"), type: "select", value: user.role,
      options: ROLES.map((r) => [r, t(`role.${r}`)]) });
    const slot = noticeSlot();
    const save = h("button", { type: "button" }, t("common.save"));
    save.addEventListener("click", async () => {
      const updated = await busy(save, slot, () => api("PUT",
        `/admin/users/${encodeURIComponent(user.user_id)}/role`, { body: { role: role.input.value } }),
      (r) => t("users.role_changed", { role: label("role", r.role) }));
      if (updated) info.querySelector("[data-test=role]").textContent = label("role", updated.role);
    });
    box.replaceChildren(section(user.email || user.phone || user.user_id, info,
      h("h3", {}, t("users.change_role")),
      h("div", { class: "inline-form" }, role.el, save), slot.el));
  }

  root.append(section(t("users.title"), lookup.el), box);
  if (ctx.params[0]) lookup.el.requestSubmit();
}
