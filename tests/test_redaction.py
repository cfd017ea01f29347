"""Redaction happens before evidence is stored; it is a pure function."""

from enforcement.redaction import REDACTED, luhn_valid, redact, redact_text


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("5555555555554444")
    assert not luhn_valid("4111111111111112")


def test_card_numbers_with_or_without_separators():
    assert redact_text("card 4111 1111 1111 1111 used") == "card [CARD REDACTED ...1111] used"
    assert redact_text("4111-1111-1111-1111") == "[CARD REDACTED ...1111]"
    assert redact_text("5555555555554444") == "[CARD REDACTED ...4444]"


def test_numbers_that_are_not_cards_stay():
    assert redact_text("order 4111111111111112 shipped") == "order 4111111111111112 shipped"
    assert redact_text("timestamp 1764400000000") == "timestamp 1764400000000"


def test_key_tokens_keep_prefix_and_last_four():
    token = "sk_live_4eC39HqLyjWDarjtT1zdp7dc1234abcd"
    assert redact_text(f"found {token} in repo") == "found sk_live_4eC39HqL...abcd in repo"
    assert "rk_live_AbCdEfGh...wxyz" in redact_text("rk_live_AbCdEfGhIjKlMnOpQrStUvwxyz")
    # A public key prefix alone is not a secret.
    assert redact_text("key sk_live_4eC39HqL") == "key sk_live_4eC39HqL"


def test_ssn():
    assert redact_text("ssn 123-45-6789 on file") == "ssn [SSN REDACTED] on file"
    assert redact_text("not an ssn 000-12-3456") == "not an ssn 000-12-3456"


def test_inline_password_assignments():
    assert redact_text("login?user=bob&password=hunter2&x=1") == f"login?user=bob&password={REDACTED}&x=1"
    assert redact_text('secret: "s3cr3t value"') == f"secret: {REDACTED}"


def test_nested_json_and_secret_field_names():
    evidence = {
        "event": {"props": {"password": "hunter2", "card": "4111111111111111", "plan": "pro"}},
        "headers": [{"Authorization": "Bearer abc"}, {"x-request-id": "r1"}],
        "customer_ssn": "123-45-6789",
        "passport_number": "X1234567",
        "api_key": "sk_live_4eC39HqLyjWDarjtT1zdp7dc1234abcd",
        "count": 4111111111111111,
        "ok": True,
        "empty_password": "",
    }
    out = redact(evidence)
    assert out["event"]["props"] == {"password": REDACTED, "card": "[CARD REDACTED ...1111]", "plan": "pro"}
    assert out["headers"] == [{"Authorization": REDACTED}, {"x-request-id": "r1"}]
    assert out["customer_ssn"] == REDACTED
    assert out["passport_number"] == REDACTED
    assert out["api_key"] == "sk_live_4eC39HqL...abcd"
    assert out["count"] == "[CARD REDACTED ...1111]"
    assert out["ok"] is True
    assert out["empty_password"] == ""
    assert "hunter2" not in str(out) and "4111111111111111" not in str(out)


def test_redact_is_pure():
    evidence = {"password": "x"}
    redact(evidence)
    assert evidence == {"password": "x"}
