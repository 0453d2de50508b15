"""Request bodies of the accounts routes: they validate input and document it in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from accounts.passwords import MAX_LENGTH, MIN_LENGTH

NOT_BLANK = r"\S"  # msgspec searches the pattern: at least one visible character

Password = Annotated[str, Meta(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]
LoginText = Annotated[str, Meta(min_length=1, max_length=254)]
PhoneText = Annotated[str, Meta(min_length=1, max_length=32)]
EmailText = Annotated[str, Meta(min_length=3, max_length=254)]
Nickname = Annotated[str, Meta(min_length=1, max_length=40, pattern=NOT_BLANK)]
AvatarUrl = Annotated[str, Meta(max_length=500, pattern=r"^https://[^\s/?#]+[^\s]*$")]
Code = Annotated[str, Meta(pattern=r"^[0-9]{6}$")]
RefreshToken = Annotated[str, Meta(min_length=1, max_length=128)]
Text50 = Annotated[str, Meta(min_length=1, max_length=50, pattern=NOT_BLANK)]
Line = Annotated[str, Meta(min_length=1, max_length=200, pattern=NOT_BLANK)]
PostalCode = Annotated[str, Meta(pattern=r"^[A-Za-z0-9 -]{3,10}$")]


class RegisterBody(msgspec.Struct, forbid_unknown_fields=True):
    """Exactly one of phone (any format; default region CN) and email."""

    password: Password
    phone: PhoneText | None = None
    email: EmailText | None = None
    nickname: Nickname | None = None


class PasswordLoginBody(msgspec.Struct, forbid_unknown_fields=True):
    """login: a phone number or an e-mail address."""

    login: LoginText
    password: Annotated[str, Meta(min_length=1, max_length=MAX_LENGTH)]


class CodeRequestBody(msgspec.Struct, forbid_unknown_fields=True):
    login: LoginText


class CodeLoginBody(msgspec.Struct, forbid_unknown_fields=True):
    login: LoginText
    code: Code


class RefreshBody(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: RefreshToken


class ProfilePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Fields left out stay as they are; null clears a field."""

    nickname: Nickname | None | UnsetType = UNSET
    avatar_url: AvatarUrl | None | UnsetType = UNSET


class AddressBody(msgspec.Struct, forbid_unknown_fields=True):
    recipient: Text50
    phone: PhoneText
    province: Text50
    city: Text50
    district: Text50
    line: Line
    postal_code: PostalCode | None = None
    is_default: bool = False


class AddressPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Fields left out stay as they are; only postal_code may be null."""

    recipient: Text50 | UnsetType = UNSET
    phone: PhoneText | UnsetType = UNSET
    province: Text50 | UnsetType = UNSET
    city: Text50 | UnsetType = UNSET
    district: Text50 | UnsetType = UNSET
    line: Line | UnsetType = UNSET
    postal_code: PostalCode | None | UnsetType = UNSET


class RoleBody(msgspec.Struct, forbid_unknown_fields=True):
    """The admin role itself cannot be granted through the API."""

    role: Literal["customer", "member", "staff", "admin"]
