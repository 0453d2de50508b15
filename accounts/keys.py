"""Every Redis key of the accounts package, built here and nowhere else.

Phone numbers, e-mail addresses and client IPs never appear in key names: each is replaced by
a short SHA-256 digest, so a key listing reveals no personal data.
"""

from __future__ import annotations

import hashlib


def digest(value: str) -> str:
    """A stable, key-safe stand-in for a login identity or an IP (also [A-Za-z0-9_-])."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class AccountKeys:
    def __init__(self, namespace: str) -> None:
        self._base = f"{namespace}:acct"

    def code(self, destination: str) -> str:
        """The HMAC of the live one-time code sent to a destination."""
        return f"{self._base}:otp:{digest(destination)}"

    def code_attempts(self, destination: str) -> str:
        """Verification attempts made against the live code of a destination."""
        return f"{self._base}:otp_tries:{digest(destination)}"

    def code_cooldown(self, destination: str) -> str:
        """Present while a destination may not be sent another code."""
        return f"{self._base}:otp_wait:{digest(destination)}"

    def login_failures(self, login: str) -> str:
        return f"{self._base}:fail:login:{digest(login)}"

    def ip_failures(self, ip: str) -> str:
        return f"{self._base}:fail:ip:{digest(ip)}"
