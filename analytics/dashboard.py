"""The report dashboard: a page without data whose script fetches the SVG charts with the
staff bearer token typed into it (kept in sessionStorage, never in a URL)."""

from __future__ import annotations

import base64
import hashlib
from typing import Final

SCRIPT: Final = """
const base = document.body.dataset.base;
const tokenField = document.getElementById("token");
tokenField.value = sessionStorage.getItem("reportsToken") || "";
async function load(id, path) {
  const params = new URLSearchParams();
  for (const name of ["from", "to", "granularity"]) {
    const v = document.getElementById(name).value;
    if (v) params.set(name, v);
  }
  const resp = await fetch(base + path + "?" + params, {
    headers: {Authorization: "Bearer " + tokenField.value.trim()}, cache: "no-store"});
  const img = document.getElementById(id);
  const note = document.getElementById(id + "-note");
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    note.textContent = resp.status + " " + ((body.error || {}).message || resp.statusText);
    img.removeAttribute("src");
    return;
  }
  note.textContent = "";
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(await resp.blob());
}
document.getElementById("controls").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("reportsToken", tokenField.value.trim());
  load("sales", "/sales/chart.svg");
  load("funnel", "/funnel/chart.svg");
});
"""

PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reports</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: sans-serif; margin: 1.5rem; color: #222; }}
form {{ display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; }}
label {{ display: flex; flex-direction: column; font-size: .85rem; }}
section {{ margin-top: 1.5rem; }} img {{ max-width: 100%; border: 1px solid #ddd; }}
.note {{ color: #a00; }}
</style></head>
<body data-base="{base}">
<h1>Reports</h1>
<form id="controls">
<label>Staff token <input id="token" type="password" autocomplete="off" size="40" required></label>
<label>From <input id="from" type="date"></label>
<label>To <input id="to" type="date"></label>
<label>Granularity <select id="granularity"><option>day</option><option>week</option>
<option>month</option></select></label>
<button type="submit">Show</button>
</form>
<section><h2>Sales</h2><p class="note" id="sales-note"></p>
<img id="sales" alt="revenue chart"></section>
<section><h2>Funnel</h2><p class="note" id="funnel-note"></p>
<img id="funnel" alt="funnel chart"></section>
<script>{script}</script>
</body></html>
"""

_SCRIPT_HASH: Final = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
HEADERS: Final = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline';"
        " img-src blob:; connect-src 'self'; form-action 'none'; frame-ancestors 'none';"
        " base-uri 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def dashboard_page(base: str) -> tuple[bytes, dict[str, str]]:
    return PAGE.format(base=base, script=SCRIPT).encode(), dict(HEADERS)
