"""GitHub secret scanning (partner program): a leaked key is revoked the moment GitHub finds it.

GitHub posts a JSON array of ``{"token", "type", "url", "source"}`` signed with one of its
ECDSA P-256 keys: ``Github-Public-Key-Identifier`` names the key, ``Github-Public-Key-Signature``
is the base64 DER signature of the raw body with SHA-256. The public keys are read from the
file named by ``settings.GITHUB_SECRET_SCANNING_KEYS``, which holds GitHub's
``/meta/public_keys/secret_scanning`` answer as it is (``manage.py fetch_github_keys`` saves it);
nothing is fetched while a delivery waits.

For each token: a secret or restricted key of ours is revoked at once, recorded as a violation
of the key-exposure rule with the URL as evidence, and its owner is emailed; a publishable key
is meant to be public and is a false positive unless the rule says otherwise; anything else
is a false positive. Replays change nothing more (the violation is idempotent per token and
URL, the email per key, and revoking a revoked key is a no-op).
"""

import base64
import binascii
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import APIKey
from accounts.tokens import hash_token, kind_of
from enforcement import notifications
from enforcement.actors import Actor
from enforcement.errors import ValidationFailed
from enforcement.models import Rule
from enforcement.services import key_revoke, violation_report
from lib.safe_json import UnsafeJSON, parse_json_safely

log = logging.getLogger(__name__)

SOURCE = "github-secret-scanning"
RULE_CODE = "key-exposure"
ACTOR = Actor.system(SOURCE)
MAX_TOKENS_PER_DELIVERY = 1000
TRUE_POSITIVE, FALSE_POSITIVE = "true_positive", "false_positive"


class SignatureInvalid(Exception):
    """The delivery is not provably from GitHub; nothing may change."""


# --------------------------------------------------------------------------- GitHub's public keys

_keys_cache: tuple[tuple, dict] | None = None
_keys_lock = threading.Lock()


def parse_public_keys(document: dict) -> dict[str, ec.EllipticCurvePublicKey]:
    """``{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}`` -> keys by identifier."""
    if not isinstance(document, dict) or not isinstance(document.get("public_keys"), list):
        raise ValueError('expected {"public_keys": [...]}')
    keys = {}
    for entry in document["public_keys"]:
        identifier, pem = entry.get("key_identifier"), entry.get("key")
        if not isinstance(identifier, str) or not isinstance(pem, str):
            raise ValueError("each public key needs a key_identifier and a PEM key")
        key = load_pem_public_key(pem.encode())
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"key {identifier[:16]}... is not an ECDSA P-256 key")
        keys[identifier] = key
    return keys


def public_keys() -> dict[str, ec.EllipticCurvePublicKey]:
    """The configured keys, reread when the file changes. No file configured: no key, every delivery fails."""
    global _keys_cache
    path = settings.GITHUB_SECRET_SCANNING_KEYS
    if not path:
        return {}
    try:
        stat = os.stat(path)
    except OSError as exc:
        log.error("GITHUB_SECRET_SCANNING_KEYS=%s cannot be read: %s", path, exc)
        return {}
    fingerprint = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    cached = _keys_cache
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    with _keys_lock:
        try:
            with open(path, "rb") as handle:
                keys = parse_public_keys(json.load(handle))
        except (OSError, ValueError, UnsupportedAlgorithm) as exc:
            log.error("GITHUB_SECRET_SCANNING_KEYS=%s is not a usable key list: %s", path, exc)
            return {}
        _keys_cache = (fingerprint, keys)
        return keys


def verify_signature(body: bytes, *, key_identifier: str | None, signature: str | None) -> None:
    """Raise ``SignatureInvalid`` unless ``signature`` is GitHub's key's ECDSA signature of ``body``."""
    if not key_identifier or not signature:
        raise SignatureInvalid("The Github-Public-Key-Identifier and Github-Public-Key-Signature headers are required.")
    key = public_keys().get(key_identifier)
    if key is None:
        raise SignatureInvalid("The signing key is not one of GitHub's known secret scanning keys.")
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureInvalid("The signature does not match the body.") from None


# --------------------------------------------------------------------------- the delivery


@dataclass(frozen=True)
class Match:
    token: str
    type: str
    url: str
    source: str


def parse_delivery(body: bytes) -> list[Match]:
    """The verified body's matches. Parsed as every JSON body the console takes (``lib.safe_json``): a signed
    body nested 100,000 deep is a 400, like any other malformed one."""
    try:
        items = parse_json_safely(body)
    except UnsafeJSON as exc:
        raise ValidationFailed(f"The body is not acceptable JSON: {exc.message}", code=exc.code) from None
    if not isinstance(items, list):
        raise ValidationFailed("The body must be a JSON array of matches.")
    if len(items) > MAX_TOKENS_PER_DELIVERY:
        raise ValidationFailed(f"At most {MAX_TOKENS_PER_DELIVERY} matches per delivery.")
    matches, fields = [], {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("token"), str) or not item["token"]:
            fields[str(index)] = ['Each match is an object with a "token" string.']
            continue
        matches.append(Match(*(str(item.get(name) or "") for name in ("token", "type", "url", "source"))))
    if fields:
        raise ValidationFailed("Some matches are not valid.", fields=fields)
    return matches


def process_delivery(matches: list[Match]) -> list[dict]:
    """Act on each match; the answer in GitHub's feedback format, in the same order."""
    return [
        {"token_hash": hash_token(m.token), "token_type": m.type, "label": label_match(m)} for m in matches
    ]


def label_match(match: Match) -> str:
    kind = kind_of(match.token)
    key = None
    if kind is not None:
        key = APIKey.objects.select_related("account").filter(token_sha256=hash_token(match.token)).first()
    if key is None or key.kind != kind:
        return FALSE_POSITIVE
    rule = Rule.objects.filter(code=RULE_CODE, is_active=True).first()
    if key.kind == APIKey.Kind.PUBLISHABLE:
        if rule is None or not rule.publishable_key_exposure_is_violation:
            return FALSE_POSITIVE
        # A violation for staff to weigh; a publishable key lives in web pages, so it is not revoked.
        _report(match, key, rule, revoked=False)
        return TRUE_POSITIVE
    # Revoke first, in its own transaction: the edge learns of it on commit, whatever happens next.
    key = key_revoke(actor=ACTOR, key_id=key.pk, reason=f"Found in public by GitHub secret scanning: {match.url}")
    with transaction.atomic():
        violation = _report(match, key, rule, revoked=True) if rule is not None else None
        case = violation.case if violation is not None else None
        context = notifications.case_context(case) if case is not None else {
            "account_id": key.account.public_id, "account_name": key.account.name
        }
        notifications.notify_account(
            template="customer_key_revoked", event_key=f"key:{key.pk}:revoked", account=key.account, case=case,
            context={
                **context,
                "key_prefix": key.prefix,
                "key_kind": key.kind,
                "leak_url": match.url,
                "leak_source": match.source,
                "revoked_at": (key.revoked_at or timezone.now()).isoformat(),
                # The statement of reasons: found by automation, revoked without a person deciding, under
                # this version of the rule.
                "detection": "automated",
                "automated_decision": "fully",
                "policy_version": f"{rule.code} v{rule.version}" if rule is not None else "",
            },
        )
    if rule is None:
        log.warning("key %s revoked but not reported: no active %r rule", key.prefix, RULE_CODE)
    return TRUE_POSITIVE


def _report(match: Match, key: APIKey, rule: Rule, *, revoked: bool):
    token_hash = hash_token(match.token)
    outcome = "It has been revoked." if revoked else "Publishable keys are not revoked automatically."
    result = violation_report(
        actor=ACTOR, account=key.account, rule=rule, api_key=key, source=SOURCE,
        external_id=hashlib.sha256(f"{token_hash}\n{match.url}".encode()).hexdigest(),
        summary=f"The {key.kind} key {key.prefix} was found in public by GitHub secret scanning "
        f"at {match.url or 'an unnamed location'}. {outcome}",
        evidence={"url": match.url, "github_source": match.source, "pattern": match.type, "key_prefix": key.prefix,
                  "revoked": revoked},
    )
    return result.violation
