"""GitHub secret scanning: signed deliveries only; leaked secret keys are revoked, reported and their owners told."""

import base64
import io
import json
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import edge, gate
from accounts.models import KeyStatus
from accounts.tokens import generate_token, hash_token
from enforcement.integrations import github
from enforcement.models import AuditEvent, Notification, Rule, Violation

pytestmark = pytest.mark.django_db

URL = reverse("github-secret-scanning")
KEY_ID = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c"
LEAK = "https://github.com/octo-org/app/blob/4f2a/config/.env"


def public_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.fixture
def github_key(settings, tmp_path):
    """GitHub's signing key (a fresh P-256 pair) and the key file an operator would have saved."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    retired = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "github-secret-scanning-keys.json"
    path.write_text(json.dumps({"public_keys": [
        {"key_identifier": "0" * 64, "key": public_pem(retired), "is_current": False},
        {"key_identifier": KEY_ID, "key": public_pem(private_key), "is_current": True},
    ]}))
    settings.GITHUB_SECRET_SCANNING_KEYS = str(path)
    return private_key


def sign(private_key, body: bytes) -> str:
    return base64.b64encode(private_key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


def deliver(body: bytes, *, key_id=KEY_ID, signature):
    client = APIClient()
    return client.post(URL, data=body, content_type="application/json", headers={
        "Github-Public-Key-Identifier": key_id, "Github-Public-Key-Signature": signature,
    })


def matches(*tokens, url=LEAK):
    return json.dumps([{"token": t, "type": "millimetric_secret_key", "url": url, "source": "content"}
                       for t in tokens]).encode()


def test_a_leaked_secret_key_is_revoked_reported_and_its_owner_told(
    store, github_key, account, keys, django_capture_on_commit_callbacks
):
    publishable, secret, restricted = keys
    edge.publish_keys(account_id=account.pk)
    for key in keys:
        assert gate.check(key.token, "192.0.2.1").allowed
    stranger = generate_token("secret")
    body = matches(secret.token, restricted.token, publishable.token, stranger, "ghp_notours")

    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(body, signature=sign(github_key, body))

    assert response.status_code == 200, response.content
    assert response.json() == [
        {"token_hash": hash_token(secret.token), "token_type": "millimetric_secret_key", "label": "true_positive"},
        {"token_hash": hash_token(restricted.token), "token_type": "millimetric_secret_key", "label": "true_positive"},
        {"token_hash": hash_token(publishable.token), "token_type": "millimetric_secret_key",
         "label": "false_positive"},
        {"token_hash": hash_token(stranger), "token_type": "millimetric_secret_key", "label": "false_positive"},
        {"token_hash": hash_token("ghp_notours"), "token_type": "millimetric_secret_key", "label": "false_positive"},
    ]
    for key in keys:
        key.refresh_from_db()
    assert [k.status for k in keys] == [KeyStatus.ACTIVE, KeyStatus.REVOKED, KeyStatus.REVOKED]
    assert LEAK in secret.revoked_reason
    # The ingest path refuses them already.
    assert [gate.check(k.token, "192.0.2.1").reason for k in keys] == ["ok", "revoked", "revoked"]

    violations = Violation.objects.filter(source=github.SOURCE).order_by("api_key__prefix")
    assert {v.api_key for v in violations} == {secret, restricted}
    for violation in violations:
        assert violation.rule.code == "key-exposure"
        assert violation.account == account
        assert violation.evidence["url"] == LEAK
        assert violation.reported_by == "github-secret-scanning"
        stored = json.dumps(violation.evidence) + violation.summary
        assert secret.token[8:] not in stored and restricted.token[8:] not in stored

    emails = Notification.objects.filter(template="customer_key_revoked")
    assert sorted((n.recipient, n.context["key_prefix"], n.context["leak_url"]) for n in emails) == sorted(
        [(account.email, secret.prefix, LEAK), (account.email, restricted.prefix, LEAK)]
    )
    revocations = AuditEvent.objects.filter(verb="key.revoked", actor_label="github-secret-scanning")
    assert revocations.count() == 2


def test_a_replayed_delivery_changes_nothing_more(store, github_key, keys, django_capture_on_commit_callbacks):
    secret = keys[1]
    body = matches(secret.token)
    first = deliver(body, signature=sign(github_key, body))
    with django_capture_on_commit_callbacks(execute=True):
        second = deliver(body, signature=sign(github_key, body))
    assert first.json() == second.json() == [
        {"token_hash": hash_token(secret.token), "token_type": "millimetric_secret_key", "label": "true_positive"}
    ]
    assert Violation.objects.filter(source=github.SOURCE).count() == 1
    assert Notification.objects.filter(template="customer_key_revoked").count() == 1
    assert AuditEvent.objects.filter(verb="key.revoked").count() == 1

    # The same key found somewhere else is a second violation, not a second email.
    other = matches(secret.token, url="https://gist.github.com/octo/1")
    deliver(other, signature=sign(github_key, other))
    assert Violation.objects.filter(source=github.SOURCE).count() == 2
    assert Notification.objects.filter(template="customer_key_revoked").count() == 1


def test_a_publishable_key_is_a_true_positive_when_the_rule_says_so_but_is_not_revoked(github_key, keys):
    Rule.objects.filter(code="key-exposure").update(publishable_key_exposure_is_violation=True)
    publishable = keys[0]
    body = matches(publishable.token)
    response = deliver(body, signature=sign(github_key, body))
    assert response.json()[0]["label"] == "true_positive"
    publishable.refresh_from_db()
    assert publishable.status == KeyStatus.ACTIVE
    violation = Violation.objects.get(source=github.SOURCE)
    assert violation.api_key == publishable
    assert violation.evidence["revoked"] is False


def _nothing_changed(keys):
    for key in keys:
        key.refresh_from_db()
        assert key.status == KeyStatus.ACTIVE and key.revoked_at is None
    assert not Violation.objects.exists()
    assert not Notification.objects.exists()


def test_an_unknown_key_identifier_is_refused(github_key, keys):
    body = matches(keys[1].token)
    response = deliver(body, key_id="f" * 64, signature=sign(github_key, body))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    _nothing_changed(keys)


def test_a_tampered_body_is_refused(github_key, keys):
    signed = matches(keys[0].token)
    tampered = matches(keys[1].token)
    response = deliver(tampered, signature=sign(github_key, signed))
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message"}
    _nothing_changed(keys)


def test_a_signature_by_another_key_is_refused(github_key, keys):
    body = matches(keys[1].token)
    impostor = ec.generate_private_key(ec.SECP256R1())
    assert deliver(body, signature=sign(impostor, body)).status_code == 401
    # ... and so is one by a listed key under another key's identifier.
    assert deliver(body, key_id="0" * 64, signature=sign(github_key, body)).status_code == 401
    _nothing_changed(keys)


@pytest.mark.parametrize("headers", [{}, {"Github-Public-Key-Identifier": KEY_ID},
                                     {"Github-Public-Key-Identifier": KEY_ID, "Github-Public-Key-Signature": "%%%"}])
def test_missing_or_garbled_signature_headers_are_refused(github_key, keys, headers):
    response = APIClient().post(URL, data=matches(keys[1].token), content_type="application/json", headers=headers)
    assert response.status_code == 401
    _nothing_changed(keys)


def test_without_configured_keys_every_delivery_is_refused(github_key, keys, settings):
    settings.GITHUB_SECRET_SCANNING_KEYS = None
    body = matches(keys[1].token)
    assert deliver(body, signature=sign(github_key, body)).status_code == 401
    _nothing_changed(keys)


def test_a_signed_body_that_is_not_a_list_of_matches_is_a_validation_error(github_key, keys):
    body = json.dumps({"token": keys[1].token}).encode()
    response = deliver(body, signature=sign(github_key, body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    body = json.dumps([{"type": "x"}]).encode()
    response = deliver(body, signature=sign(github_key, body))
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"0": ['Each match is an object with a "token" string.']}
    _nothing_changed(keys)


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_a_signed_body_nested_100000_deep_is_a_400_and_an_unsigned_one_a_401(github_key, keys):
    response = deliver(DEEP, signature=sign(github_key, DEEP))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_deep"
    assert "deeper than 32" in response.json()["error"]["message"]
    impostor = ec.generate_private_key(ec.SECP256R1())
    assert deliver(DEEP, signature=sign(impostor, DEEP)).status_code == 401
    assert APIClient().post(URL, data=DEEP, content_type="application/json").status_code == 401
    _nothing_changed(keys)


@pytest.mark.parametrize("body, code", [
    (b'[{"token": "sk_live_x", "type": "t", "url": "u", "source": 1e400}]', "non_finite_number"),
    (b'[{"token": "sk_live_\\u0000", "type": "t", "url": "u", "source": "s"}]', "forbidden_character"),
    (b'[{"token": "x\x00"}]', "forbidden_character"),
    (b"[\xff]", "parse_error"),
])
def test_a_signed_body_that_cannot_be_stored_is_a_400(github_key, keys, body, code):
    response = deliver(body, signature=sign(github_key, body))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    _nothing_changed(keys)


def test_a_2_mb_delivery_is_a_413_before_the_signature_is_checked(github_key, keys):
    body = matches(*[keys[1].token] * 30_000)
    assert len(body) > 2_000_000
    for signature in (sign(github_key, body), "not-a-signature"):
        response = deliver(body, signature=signature)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
    assert APIClient().post(URL, data=body, content_type="application/json").status_code == 413
    _nothing_changed(keys)


def test_a_key_file_with_a_key_that_is_not_p256_is_not_used(settings, tmp_path):
    other_curve = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"public_keys": [
        {"key_identifier": KEY_ID, "key": public_pem(other_curve), "is_current": True}
    ]}))
    settings.GITHUB_SECRET_SCANNING_KEYS = str(path)
    assert github.public_keys() == {}


def test_the_key_file_is_reread_when_it_changes(github_key, settings, tmp_path):
    assert set(github.public_keys()) == {"0" * 64, KEY_ID}
    rotated = ec.generate_private_key(ec.SECP256R1())
    # Replaced the way fetch_github_keys does it: a new file renamed over the old one.
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"public_keys": [
        {"key_identifier": "a" * 64, "key": public_pem(rotated), "is_current": True},
        {"key_identifier": "b" * 64, "key": public_pem(rotated), "is_current": False},
    ]}))
    os.replace(new, settings.GITHUB_SECRET_SCANNING_KEYS)
    assert set(github.public_keys()) == {"a" * 64, "b" * 64}


def test_fetch_github_keys_saves_a_usable_key_list_and_keeps_the_old_one_on_a_bad_answer(github_key, settings,
                                                                                       tmp_path):
    answer = tmp_path / "answer.json"
    rotated = ec.generate_private_key(ec.SECP256R1())
    answer.write_text(json.dumps({"public_keys": [
        {"key_identifier": "c" * 64, "key": public_pem(rotated), "is_current": True}
    ]}))
    call_command("fetch_github_keys", url=answer.as_uri(), stdout=io.StringIO())
    assert set(github.public_keys()) == {"c" * 64}

    answer.write_text(json.dumps({"message": "API rate limit exceeded"}))
    with pytest.raises(CommandError):
        call_command("fetch_github_keys", url=answer.as_uri(), stdout=io.StringIO())
    assert set(github.public_keys()) == {"c" * 64}
