"""SHA256withRSA (PKCS#1 v1.5) signing and verification, and key loading, for Alipay and WeChat."""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal, InvalidOperation

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _der_or_pem(text: str, kind: str) -> bytes:
    # Consoles hand out bare base64 bodies; wrap them so one loader reads both forms.
    if "-----BEGIN" in text:
        return text.encode()
    body = "\n".join(text.strip()[i:i + 64] for i in range(0, len(text.strip()), 64))
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n".encode()


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(_der_or_pem(text, "PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("an RSA private key is required")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(_der_or_pem(text, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("an RSA public key is required")
    return key


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """Base64 SHA256withRSA signature of `message`."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(key: rsa.RSAPublicKey, message: bytes, signature_b64: object) -> bool:
    if not isinstance(signature_b64, str) or not signature_b64:
        return False
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (_BadSignature, binascii.Error, ValueError):
        return False
    return True


def yuan(fen: int) -> str:
    """Integer fen as the yuan string Alipay uses: 1999 -> '19.99'."""
    return f"{fen // 100}.{fen % 100:02d}"


def fen(yuan_text: str) -> int | None:
    """'19.99' -> 1999; None unless it is a non-negative amount with at most two decimals."""
    if len(yuan_text) > 20:
        return None
    try:
        value = Decimal(yuan_text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -2:  # type: ignore[operator]
        return None
    return int(value * 100)
