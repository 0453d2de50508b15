"""Log-in identities: a phone number in E.164 or a lower-cased e-mail address."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from mall.errors import invalid

DEFAULT_REGION = "CN"
MAX_RAW_LENGTH = 254


@dataclass(frozen=True, slots=True)
class Login:
    kind: Literal["phone", "email"]
    value: str


def normalize_phone(raw: str) -> str:
    """The number in E.164 (default region CN); 422 when it is not a valid number."""
    if not raw or len(raw) > 32:
        raise invalid("phone is not a valid phone number")
    try:
        number = phonenumbers.parse(raw, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise invalid("phone is not a valid phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise invalid("phone is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    """The address normalised and lower-cased, so case never creates a second account."""
    if not raw or len(raw) > MAX_RAW_LENGTH:
        raise invalid("email is not a valid e-mail address")
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        raise invalid("email is not a valid e-mail address") from None
    return result.normalized.lower()


def parse_login(raw: str) -> Login:
    """A phone number or an e-mail address: anything with an '@' is read as an e-mail."""
    raw = raw.strip()
    if "@" in raw:
        return Login("email", normalize_email(raw))
    return Login("phone", normalize_phone(raw))
