"""Service tokens: the raw value's shape and hash, and authentication. Creating and revoking them are
services (``enforcement.services.tokens``).

Authentication reads the database at most every ``FRESH_SECONDS`` per token: in between, and while the
database is unreachable, the token is verified from the cache (which lives apart from the database), so
the gate, which reads only the edge store, keeps deciding through a PostgreSQL outage. Revoking a token
removes it from the cache at once. When a token was last used is noted in the cache and written to the
database in one pass a minute (``record_token_use``), never on the request path.
"""

import hashlib
import logging
import time
from datetime import datetime

from django.core.cache import cache
from django.db import DatabaseError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from enforcement.models import ServiceToken
from lib.cache import quietly

log = logging.getLogger(__name__)

TOKEN_PREFIX = "mmst_"
FRESH_SECONDS = 30  # a cached token is checked against the database again after this
KEEP_SECONDS = 24 * 3600  # how long a cached token may stand in for an unreachable database
USE_NOTE_SECONDS = 60  # a token's use is noted at most this often per process
_noted: dict[str, float] = {}  # token hash -> when this process last noted its use


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _key(digest: str) -> str:
    return f"service-token:{digest}"


def _entry(token: ServiceToken) -> dict:
    return {
        "checked": time.time(), "pk": token.pk, "name": token.name, "prefix": token.prefix,
        "scopes": list(token.scopes), "trusted": token.trusted, "created_by_id": token.created_by_id,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def _from_entry(entry: dict, digest: str) -> ServiceToken:
    return ServiceToken(
        pk=entry["pk"], name=entry["name"], prefix=entry["prefix"], token_sha256=digest, scopes=entry["scopes"],
        trusted=entry["trusted"], created_by_id=entry["created_by_id"],
        expires_at=parse_datetime(entry["expires_at"]) if entry["expires_at"] else None,
        revoked_at=parse_datetime(entry["revoked_at"]) if entry["revoked_at"] else None,
    )


def service_token_authenticate(raw: str) -> ServiceToken | None:
    """The live token for a raw value, or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    digest = token_hash(raw)
    entry = quietly(cache.get, _key(digest))
    if entry is not None and time.time() - entry["checked"] < FRESH_SECONDS:
        token = _from_entry(entry, digest)
    else:
        try:
            token = ServiceToken.objects.filter(token_sha256=digest).first()
        except DatabaseError:
            if entry is None:
                raise  # never seen while the database answered: nothing to vouch for it
            log.warning("database unreachable: token %s verified from the cache", entry["name"])
            token = _from_entry(entry, digest)
        else:
            if token is None:
                quietly(cache.delete, _key(digest))
            else:
                quietly(cache.set, _key(digest), _entry(token), timeout=KEEP_SECONDS)
    now = timezone.now()
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
        return None
    _note_use(token, now)
    return token


def forget_cached_token(token: ServiceToken) -> None:
    """Drop a token from the cache (it was revoked): the next request reads the database."""
    quietly(cache.delete, _key(token.token_sha256))


def _note_use(token: ServiceToken, now: datetime) -> None:
    if time.time() - _noted.get(token.token_sha256, 0) < USE_NOTE_SECONDS:
        return
    _noted[token.token_sha256] = time.time()
    quietly(cache.set, f"service-token-used:{token.pk}", now.isoformat(), timeout=KEEP_SECONDS)


def record_token_use() -> int:
    """Write the last-use times noted in the cache to the database (beat, every minute); returns how many."""
    ids = list(ServiceToken.objects.filter(revoked_at__isnull=True).values_list("pk", flat=True))
    noted = quietly(cache.get_many, [f"service-token-used:{pk}" for pk in ids]) or {}
    written = 0
    for key, value in noted.items():
        used_at = parse_datetime(value)
        token_id = int(key.rsplit(":", 1)[1])
        written += ServiceToken.objects.filter(pk=token_id).exclude(last_used_at__gte=used_at).update(
            last_used_at=used_at
        )
    return written
