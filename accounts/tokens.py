"""API key token format: a kind prefix and 32 random characters; never stored raw."""

import hashlib
import secrets
import string

KIND_PREFIXES = {
    "publishable": "pk_live_",
    "secret": "sk_live_",
    "restricted": "rk_live_",
}
PREFIX_LENGTH = 16  # kind prefix (8) + 8 characters: the key's public identifier
TOKEN_RANDOM_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def kind_of(token_or_prefix: str) -> str | None:
    for kind, kind_prefix in KIND_PREFIXES.items():
        if token_or_prefix.startswith(kind_prefix):
            return kind
    return None


def prefix_of(token: str) -> str:
    return token[:PREFIX_LENGTH]


def generate_token(kind: str) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_RANDOM_LENGTH))
    return KIND_PREFIXES[kind] + body


def is_well_formed_prefix(prefix: str) -> bool:
    kind = kind_of(prefix)
    return (
        kind is not None
        and len(prefix) == PREFIX_LENGTH
        and all(c in _ALPHABET for c in prefix[len(KIND_PREFIXES[kind]) :])
    )
