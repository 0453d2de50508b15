"""Writing audit entries: the one INSERT, the redaction of secrets and the masking of logins.

`append` is the public way for any package to add an entry (a staff adjustment made outside a
request, say). Passed a connection inside a transaction, the entry commits with the caller's
change or not at all.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg
import orjson
import phonenumbers

STAFF_ACTION: Final = "staff_action"
LOGIN: Final = "login"
PERMISSION_DENIED: Final = "permission_denied"
PAYMENT_CALLBACK: Final = "payment_callback"
KINDS: Final = (STAFF_ACTION, LOGIN, PERMISSION_DENIED, PAYMENT_CALLBACK)

REDACTED: Final = "[redacted]"
MAX_TEXT = 256
MAX_ITEMS = 50
MAX_DEPTH = 5
# Key words that name a secret: the value is never stored, whatever it looks like.
SECRET_WORDS = frozenset({
    "password", "passwd", "pwd", "passphrase", "secret", "token", "code", "otp", "pin", "cvv",
    "cvc", "cvv2", "card", "pan", "authorization", "signature", "sign", "key", "credential",
    "credentials", "cookie",
})
SECRET_PARTS = ("password", "passwd", "secret", "token", "credential", "cvv")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_CARDLIKE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")

INSERT_ENTRY = """
INSERT INTO audit_log (kind, actor, actor_role, ip, method, path, route, target, status,
                       outcome, details, request_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11::jsonb, $12)
RETURNING id
"""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    kind: str
    method: str
    path: str
    status: int
    outcome: str
    actor: str | None = None
    actor_role: str | None = None
    ip: str | None = None
    route: str | None = None
    target: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None

    def args(self) -> list[Any]:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        return [
            self.kind, _opt_text(self.actor, 64), _opt_text(self.actor_role, 16),
            _ip(self.ip), clean_text(self.method, 16), clean_text(self.path, 2048),
            _opt_text(self.route, 512),
            orjson.dumps({clean_text(str(k), MAX_TEXT): clean_text(str(v), MAX_TEXT)
                          for k, v in self.target.items()}).decode(),
            self.status, clean_text(self.outcome, 64),
            orjson.dumps(redact(self.details)).decode(), _opt_text(self.request_id, 128),
        ]


async def append(db: asyncpg.Pool | asyncpg.Connection, entry: AuditEntry) -> int:
    """Write one entry (its details redacted) and return its id."""
    return int(await db.fetchval(INSERT_ENTRY, *entry.args()))


# -- text hygiene ------------------------------------------------------------------------------


def clean_text(value: str, limit: int) -> str:
    """Storable text: no NUL, no lone surrogates, at most `limit` characters."""
    value = value[:limit]
    if value.isascii() and "\x00" not in value:
        return value
    value = value.encode("utf-8", "replace").decode("utf-8")
    return value.replace("\x00", "\ufffd")


def _opt_text(value: str | None, limit: int) -> str | None:
    return None if value is None else clean_text(value, limit)


def _ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


# -- secrets -----------------------------------------------------------------------------------


def is_secret_key(key: str) -> bool:
    lowered = _CAMEL.sub("_", key).lower()
    if any(part in lowered for part in SECRET_PARTS):
        return True
    return any(word in SECRET_WORDS for word in _WORD_SPLIT.split(lowered))


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _redact_text(value: str) -> str:
    if _JWT.match(value):
        return REDACTED
    for match in _CARDLIKE.finditer(value):
        if _luhn(re.sub(r"\D", "", match.group())):
            return REDACTED
    return clean_text(value, MAX_TEXT)


def redact(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy, bounded in size, with every secret replaced by a marker."""
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return REDACTED
        # A flag under a secret's name (signature_valid) tells nothing secret: it is kept.
        return {clean_text(str(k), MAX_TEXT): REDACTED
                if is_secret_key(str(k)) and not isinstance(v, bool | None)
                else redact(v, depth + 1) for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            return REDACTED
        return [redact(v, depth + 1) for v in value[:MAX_ITEMS]]
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, bool | float | None):
        return value
    if isinstance(value, int):
        return REDACTED if _luhn_number(value) else value
    return clean_text(str(value), MAX_TEXT)


def _luhn_number(value: int) -> bool:
    digits = str(abs(value))
    return 13 <= len(digits) <= 19 and _luhn(digits)


def mask_login(raw: str) -> str:
    """A log-in identifier made safe to keep: +86138****5678, a***@example.com."""
    raw = clean_text(raw.strip(), 254)
    if "@" in raw:
        local, _, domain = raw.rpartition("@")
        return f"{local[:1]}***@{domain.lower()}"
    try:
        number = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and number.national_number:
        national = str(number.national_number)
        if len(national) >= 8:
            return f"+{number.country_code}{national[:3]}****{national[-4:]}"
        return f"+{number.country_code}****{national[-2:] if len(national) >= 6 else ''}"
    return "***" if len(raw) <= 6 else f"{raw[:1]}***{raw[-2:]}"
