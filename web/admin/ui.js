// Small building blocks shared by the back-office views: forms with validation, busy buttons,
// notices, tables, dates and authenticated downloads. DOM is built with h() only.
import { h, newKey, money, ApiFailure } from "/assets/common/api.js";
import { t, DICT } from "./i18n.js";

export { h, newKey, money };

// ---- dates -------------------------------------------------------------------------------
const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");

// "2026-11-24T10:30" (a datetime-local value, local time) -> "2026-11-24T10:30:00+08:00".
export function localToIso(value) {
  if (!value) return null;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return null;
  const off = -d.getTimezoneOffset();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:`
    + `${pad(d.getMinutes())}:${pad(d.getSeconds())}${off >= 0 ? "+" : "-"}`
    + `${pad(off / 60)}:${pad(off % 60)}`;
}

// An ISO instant -> a datetime-local value in local time.
export function isoToLocal(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:`
    + `${pad(d.getMinutes())}`;
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function label(prefix, value) {
  const key = `${prefix}.${value}`;
  return DICT[key] ? t(key) : String(value ?? "—");
}

// ---- errors ------------------------------------------------------------------------------
// A readable sentence for an API failure, in the page's language.
export function errorText(err) {
  if (err instanceof ApiFailure || err?.code) {
    const key = `err.${err.code}`;
    if (DICT[key]) return t(key, { message: err.message || "" });
    return err.message || err.code;
  }
  return String(err?.message || err);
}

// The request field an invalid_request names: msgspec says "... - at `$.skus[0].price`";
// hand-written checks start with the field name ("ends_at must be after starts_at").
export function errorField(err, names) {
  const at = /at `\$\.([A-Za-z_]+)/.exec(err?.message || "");
  if (at) return at[1];
  const first = /^([a-z_]+)\b/.exec(err?.message || "");
  if (first && names.includes(first[1])) return first[1];
  if (err?.details?.field) return err.details.field;
  return null;
}

// ---- notices -----------------------------------------------------------------------------
export function toast(kind, text) {
  const area = document.getElementById("toasts");
  if (!area) return;
  const el = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    text);
  area.append(el);
  while (area.children.length > 2) area.firstElementChild.remove();
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

// A notice slot inside a view: set(kind, text) / clear().
export function noticeSlot() {
  const el = h("div", { class: "notice-slot", "aria-live": "polite" });
  return {
    el,
    set(kind, text) {
      el.replaceChildren(h("div", {
        class: `notice ${kind}`, role: kind === "error" ? "alert" : "status",
        "data-kind": kind,
      }, text));
    },
    clear() { el.replaceChildren(); },
  };
}

// Runs an action with the button busy and the outcome shown in the slot (and as a toast).
export async function busy(button, slot, fn, successText) {
  const original = button?.textContent;
  if (button) { button.disabled = true; button.textContent = t("common.busy"); }
  slot?.set("info", t("common.busy"));
  try {
    const result = await fn();
    const text = typeof successText === "function" ? successText(result) : successText;
    if (text) { slot?.set("ok", text); toast("ok", text); } else slot?.clear();
    return result;
  } catch (err) {
    const text = errorText(err);
    slot?.set("error", text);
    toast("error", text);
    return undefined;
  } finally {
    if (button) { button.disabled = false; button.textContent = original; }
  }
}

// ---- forms -------------------------------------------------------------------------------
class FieldError extends Error {
  constructor(field, message) { super(message); this.field = field; }
}

// spec: {name, label, type: text|money|int|datetime|check|select|textarea|password,
//        value, options: [[value, label]], optional, attrs}
export function field(spec) {
  const id = `f-${spec.name}-${Math.random().toString(36).slice(2, 8)}`;
  const type = spec.type || "text";
  let input;
  if (type === "select") {
    input = h("select", { id, name: spec.name, ...spec.attrs },
      (spec.options || []).map(([v, l]) => h("option", { value: v }, l)));
    if (spec.value !== undefined) input.value = String(spec.value);
  } else if (type === "textarea") {
    input = h("textarea", { id, name: spec.name, rows: 3, ...spec.attrs });
    input.value = spec.value ?? "";
  } else if (type === "check") {
    input = h("input", { id, name: spec.name, type: "checkbox", ...spec.attrs });
    input.checked = Boolean(spec.value);
  } else {
    const htmlType = { money: "text", int: "text", datetime: "datetime-local",
      password: "password", email: "text", date: "date" }[type] || "text";
    const mode = { money: "decimal", int: "numeric" }[type];
    input = h("input", { id, name: spec.name, type: htmlType, inputmode: mode, ...spec.attrs });
    if (spec.value !== undefined && spec.value !== null) input.value = String(spec.value);
  }
  const err = h("span", { class: "field-error", role: "alert", hidden: true });
  const wrap = type === "check"
    ? h("label", { class: "check", for: id }, input, " ",
      h("span", { class: "label-text" }, spec.label), err)
    : h("label", { for: id }, h("span", { class: "label-text" }, spec.label), input, err);
  wrap.dataset.field = spec.name;

  function fail(message) { throw new FieldError(spec.name, message); }

  return {
    name: spec.name, el: wrap, input,
    get() {
      const raw = type === "check" ? input.checked : String(input.value).trim();
      if (type === "check" || type === "select") return raw;
      if (raw === "") {
        if (spec.optional) return undefined;
        fail(t(type === "datetime" ? "err.datetime" : "err.required"));
      }
      if (type === "money") {
        if (!/^\d+(\.\d{1,2})?$/.test(raw)) fail(t("err.number"));
        return Math.round(Number(raw) * 100);
      }
      if (type === "int") {
        if (!/^\d+$/.test(raw)) fail(t("err.number"));
        return Number(raw);
      }
      if (type === "datetime") {
        const iso = localToIso(raw);
        if (!iso) fail(t("err.datetime"));
        return iso;
      }
      return raw;
    },
    set(value) {
      if (type === "check") input.checked = Boolean(value);
      else input.value = value ?? "";
    },
    error(message) {
      err.textContent = message || "";
      err.hidden = !message;
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    },
  };
}

// A form of fields; onSubmit(values, key) -> result; success(result) -> text.
// Validation failures (local or the API's invalid_request) are shown at their field.
export function form({ fields, submit, onSubmit, success, extra, className }) {
  const slot = noticeSlot();
  const button = h("button", { type: "submit" }, submit);
  const el = h("form", { class: `form-grid ${className || ""}`, novalidate: true },
    fields.map((f) => f.el), extra || null,
    h("div", { class: "form-actions" }, button), slot.el);
  const names = fields.map((f) => f.name);

  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    fields.forEach((f) => f.error(""));
    let values;
    try {
      values = {};
      for (const f of fields) {
        const v = f.get();
        if (v !== undefined) values[f.name] = v;
      }
    } catch (err) {
      if (err instanceof FieldError) {
        const f = fields.find((x) => x.name === err.field);
        f?.error(err.message);
        f?.input.focus();
        slot.set("error", `${t("common.field", { field: f?.el.querySelector(".label-text")?.textContent || err.field })}`
          + ` — ${err.message}`);
        return;
      }
      throw err;
    }
    const key = newKey();
    await busy(button, slot, async () => {
      try {
        return await onSubmit(values, key);
      } catch (err) {
        const name = errorField(err, names);
        const f = fields.find((x) => x.name === name);
        if (f) f.error(errorText(err));
        throw err;
      }
    }, success);
  });
  return { el, fields, slot, button, byName: (n) => fields.find((f) => f.name === n) };
}

// ---- tables ------------------------------------------------------------------------------
// columns: [{label, cell: (row) => node|text}]; on phones each row becomes a card.
export function table(columns, rows, { empty } = {}) {
  if (!rows.length) return h("p", { class: "muted empty" }, empty || t("common.none"));
  return h("div", { class: "table-wrap" }, h("table", { class: "data" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => {
      const value = c.cell(row);
      return h("td", { "data-label": c.label }, value ?? "—");
    }))))));
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

export function keyValues(pairs) {
  return h("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

// ---- authenticated downloads ---------------------------------------------------------------
// GETs an /api/v1 path with the bearer token as a Blob (charts, CSV files).
export async function fetchBlob(session, api, path) {
  const get = () => fetch(`/api/v1${path}`, {
    headers: { Authorization: `Bearer ${session.get()?.access_token || ""}` },
  });
  let resp = await get();
  if (resp.status === 401) {
    await api("GET", "/me").catch(() => null); // refreshes the session when it can
    resp = await get();
  }
  if (!resp.ok) {
    let e = {};
    try { e = (await resp.json()).error || {}; } catch { /* not JSON */ }
    throw new ApiFailure(resp.status, e.code, e.message, e.details);
  }
  return resp.blob();
}

export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}
