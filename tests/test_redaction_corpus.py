"""A corpus of hostile input for redaction: every disguise a secret or a third party's address was found in,
what must not survive it, and the harmless text (order numbers, timestamps, versions, prices) that must."""

import json
import re

import pytest

from enforcement.redaction import REDACTED, redact, redact_text

TOKEN = "sk_live_4eC39HqLyjWDarjtT1zdp7dc1234abcd"
SHOWN = "sk_live_4eC39HqL...abcd"  # how the console shows that key
SECRET_PART = TOKEN[16:-4]  # what must never be seen
SERVICE_TOKEN = "mmst_Zq3v9K_xY2-pL8mN4bR7tW1cF6hJ0dS5aE9uQ2iO3gV"
CARD = "4111111111111111"
CARD_SHOWN = "[CARD REDACTED ...1111]"
EMAIL = re.compile(r"\[EMAIL [0-9a-f]{8}@victim\.example\]")
IP = r"\[IP {} [0-9a-f]{{8}}\]"


def case(text, gone=(), expected=None, *, id):
    """``expected``: the exact output, or a regex the whole output must match."""
    return pytest.param(text, (gone,) if isinstance(gone, str) else gone, expected, id=id)


LEAKS = [
    # Key tokens, wherever they are glued or encoded.
    case(f"apikey_{TOKEN}", SECRET_PART, f"apikey_{SHOWN}", id="key-after-underscore"),
    case(f"key9{TOKEN}", SECRET_PART, f"key9{SHOWN}", id="key-after-digit"),
    case(f"found{TOKEN}in logs", SECRET_PART, id="key-after-letter"),
    case(f"https://api.example/v1/e?key={TOKEN}&x=1", SECRET_PART, f"https://api.example/v1/e?key={SHOWN}&x=1",
         id="key-in-url-query"),
    case(f"q=Bearer%20{TOKEN}", SECRET_PART, f"q=Bearer%20{SHOWN}", id="key-url-encoded-bearer"),
    case(f"key%3D{TOKEN}", SECRET_PART, f"key%3D{SHOWN}", id="key-after-encoded-equals"),
    case(f'{{"{TOKEN}": "owner"}}', SECRET_PART, f'{{"{SHOWN}": "owner"}}', id="key-as-json-object-key"),
    case(TOKEN + "sk_live_ZZZZZZZZyyyyyyyyxxxxxxxxwwwwwwww", (SECRET_PART, "yyyyyyyyxxxxxxxx"),
         f"{SHOWN}sk_live_ZZZZZZZZ...wwww", id="two-keys-glued"),
    case("rk_live_AbCdEfGhIjKlMnOpQrStUvWxYz012345 and pk_live_AbCdEfGh0000000000000000000000zz",
         ("IjKlMnOpQrStUvWx", "0000000000000000"), id="restricted-and-publishable-keys"),
    case(f"sk_live_4eC39HqL\u200b{TOKEN[16:]}", SECRET_PART, SHOWN, id="key-split-by-zero-width-space"),
    case(f"api_key={TOKEN}", SECRET_PART, f"api_key={SHOWN}", id="key-under-secret-name-shown-as-console-shows"),
    # Service tokens, anywhere.
    case(f"token used: x{SERVICE_TOKEN}y", SERVICE_TOKEN[5:], id="service-token-glued"),
    case(f"Bearer {SERVICE_TOKEN}", SERVICE_TOKEN[5:], "Bearer mmst_[REDACTED]", id="service-token-bearer"),
    case(f"/hook?auth_token={SERVICE_TOKEN}&a=1", SERVICE_TOKEN[5:], id="service-token-in-query"),
    # Authorization headers of any scheme, and other credentials.
    case("Authorization: Bearer abc.def.ghi123", "abc.def", f"Authorization: {REDACTED}", id="authorization-bearer"),
    case("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy", f"Authorization: {REDACTED}",
         id="authorization-basic"),
    case("authorization: Token 9f8e7d6c5b4a", "9f8e7d6c5b4a", id="authorization-token-scheme"),
    case('Authorization: Digest username="bob", response="6629fae49393a05397450978507c4ef1"\nAccept: */*',
         "6629fae4", f"Authorization: {REDACTED}\nAccept: */*", id="authorization-digest-keeps-next-line"),
    case("Authorization: Acme-HMAC s3cr3t-value", "s3cr3t", id="authorization-custom-scheme"),
    case("Proxy-Authorization: Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXagMDAuBgkq", "YIIBhg",
         id="proxy-authorization"),
    case("HTTP_AUTHORIZATION=Bearer abc123xyz", "abc123xyz", id="wsgi-authorization"),
    case("sent with Bearer abc123def456 from the SDK", "abc123def456",
         f"sent with Bearer {REDACTED} from the SDK", id="bearer-without-header-name"),
    case("basic dXNlcjpodW50ZXIy in a log", "dXNlcjpodW50ZXIy", id="basic-credentials-without-header-name"),
    case("Cookie: session=abc123; theme=dark", ("abc123", "theme"), f"Cookie: {REDACTED}", id="cookie-header"),
    case("Set-Cookie: sid=s3cr3t; Path=/; HttpOnly", "s3cr3t", id="set-cookie-header"),
    case("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
         "eyJzdWIi", REDACTED, id="jwt"),
    case("key: -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq+\nq9Zx==\n-----END RSA PRIVATE KEY-----\nnext",
         "MIIEowIBAAKCAQEA7bq", f"key: {REDACTED}\nnext", id="pem-private-key"),
    case(r'"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"',
         "MIIEvQIBADANBg", f'"{REDACTED}\\n"', id="pem-private-key-json-escaped"),
    case("postgres://app:hunter2@db.internal:5432/prod", "hunter2",
         f"postgres://app:{REDACTED}@db.internal:5432/prod", id="password-in-url-userinfo"),
    # Header pairs: the secret is the sibling of a secret-named entry.
    case('[["Authorization", "Bearer x"], ["Accept", "*/*"]]', "Bearer x",
         f'[["Authorization", {REDACTED}], ["Accept", "*/*"]]', id="header-pair-list"),
    case('[{"name": "Authorization", "value": "Bearer zzz"}]', "zzz",
         f'[{{"name": "Authorization", "value": {REDACTED}}}]', id="har-header-object"),
    case("headers=[('X-Api-Key', 'abc123'), ('Accept', 'json')]", "abc123", id="python-repr-header-tuple"),
    # Passwords in JSON-in-a-string, form bodies, query strings, code, command lines.
    case(r'"{\"password\": \"hunter2\", \"user\": \"bob\"}"', "hunter2",
         rf'"{{\"password\": {REDACTED}, \"user\": \"bob\"}}"', id="password-json-in-string"),
    case("user=a&password=hunter2", "hunter2", f"user=a&password={REDACTED}", id="password-form-body"),
    case("/login?user=bob&pwd=hunter2#top", "hunter2", f"/login?user=bob&pwd={REDACTED}", id="pwd-query"),
    case("db_password=hunter2", "hunter2", f"db_password={REDACTED}", id="password-name-with-prefix"),
    case("userPassword: 'hunter2'", "hunter2", f"userPassword: {REDACTED}", id="password-camel-case-name"),
    case("PASSWORD=hunter2", "hunter2", id="password-upper-case"),
    case("user[password]=hunter2&user[name]=bob", "hunter2", id="password-rails-form-name"),
    case("mysqldump --password hunter2 prod", "hunter2", f"mysqldump --password {REDACTED} prod",
         id="password-command-line-option"),
    case("password%3Dhunter2", "hunter2", f"password={REDACTED}", id="password-percent-encoded"),
    case("pass%77ord=hunter2", "hunter2", id="password-name-percent-encoded"),
    case("password%253Dhunter2", "hunter2", id="password-double-encoded"),
    case('if password == "hunter2":', "hunter2", f"if password == {REDACTED}:", id="password-in-code"),
    case("client_secret: abc123\nx-csrf-token=qwe789", ("abc123", "qwe789"), id="secret-and-csrf-names"),
    case(r'{"password": "hun\"ter2"}', ("hun", "ter2"), f'{{"password": {REDACTED}}}',
         id="password-with-escaped-quote"),
    case("pass\u200bword=hunter2", "hunter2", id="password-name-split-by-zero-width-space"),
    # Card numbers in common groupings (Luhn-checked, 13-19 digits).
    case("4111.1111.1111.1111", "1111.1111.1111", CARD_SHOWN, id="card-dots"),
    case("4111  1111  1111  1111", "1111  1111", CARD_SHOWN, id="card-double-spaces"),
    case("4111-1111 1111-1111", "1111 1111", CARD_SHOWN, id="card-mixed-separators"),
    case("4111 - 1111 - 1111 - 1111", "1111 - 1111", CARD_SHOWN, id="card-spaced-dashes"),
    case("4111\u00a01111\u00a01111\u00a01111", "1111\u00a01111", CARD_SHOWN, id="card-non-breaking-spaces"),
    case("4111+1111+1111+1111", "1111+1111", CARD_SHOWN, id="card-form-encoded-pluses"),
    case("card%3A4111%201111%201111%201111", "1111%201111", f"card:{CARD_SHOWN}", id="card-percent-encoded"),
    case("Amex 3782 822463 10005", "822463", "Amex [CARD REDACTED ...0005]", id="card-amex-4-6-5"),
    case("6011 0009 9013 9424", "0009 9013", "[CARD REDACTED ...9424]", id="card-discover"),
    case("6304 0000 0000 0000 018", "0000 0000", "[CARD REDACTED ...0018]", id="card-19-digits"),
    case("visa13 4222222222222 ok", "4222222222222", "visa13 [CARD REDACTED ...2222] ok", id="card-13-digits"),
    case(f"cc{CARD}", CARD, f"cc{CARD_SHOWN}", id="card-glued-to-letters"),
    case("4111 1111 1111 1111 1234", "1111 1111 1111", f"{CARD_SHOWN} 1234", id="card-followed-by-digits"),
    case("\uff14" + "\uff11" * 15, "\uff11" * 8, CARD_SHOWN, id="card-full-width-digits"),
    case("ssn 123-45-6789 on file", "123-45-6789", "ssn [SSN REDACTED] on file", id="ssn"),
    # Third parties' addresses: masked, still correlatable.
    case("visitor shopper@victim.example signed up", "shopper",
         re.compile(rf"visitor {EMAIL.pattern} signed up"), id="email"),
    case("mail SHOPPER@Victim.Example.", "SHOPPER", re.compile(rf"mail {EMAIL.pattern}\."), id="email-sentence-end"),
    case("u=shopper%40victim.example", "shopper", re.compile(rf"u={EMAIL.pattern}"), id="email-percent-encoded"),
    case("from 203.0.113.9:443", "203.0.113.9", re.compile("from " + IP.format(r"203\.0\.113\.x") + ":443"),
         id="ipv4-with-port"),
    case("XFF: 203.0.113.9, 198.51.100.7.", ("203.0.113.9", "198.51.100.7"),
         re.compile("XFF: " + IP.format(r"203\.0\.113\.x") + ", " + IP.format(r"198\.51\.100\.x") + r"\."),
         id="ipv4-list-sentence-end"),
    case("ip=2001:db8:85a3::8a2e:370:7334", "8a2e:370:7334", re.compile("ip=" + IP.format("2001:db8:85a3::/48")),
         id="ipv6"),
    case("http://[2001:db8::1]:8080/", "2001:db8::1",
         re.compile(r"http://\[" + IP.format("2001:db8::/48") + r"\]:8080/"), id="ipv6-in-url"),
    case("::ffff:203.0.113.9", "203.0.113.9", re.compile(IP.format(r"203\.0\.113\.x")), id="ipv4-mapped-ipv6"),
    case("from 2001:db8:85a3:7::", "85a3:7", re.compile("from " + IP.format("2001:db8:85a3::/48")),
         id="ipv6-ending-in-::"),
    case("net 2001:db8:1:2::/64 seen", "1:2::", re.compile("net " + IP.format("2001:db8:1::/48") + "/64 seen"),
         id="ipv6-network-ending-in-::"),
    case("at 2a00:1450:4001:82b::. Then 2001:db8:1:9::: refused", ("82b", "1:9::"),
         re.compile("at " + IP.format("2a00:1450:4001::/48") + r"\. Then " + IP.format("2001:db8:1::/48")
                    + ": refused"), id="ipv6-ending-in-::-then-punctuation"),
    case("ip%3D203.0.113.9", "203.0.113.9", id="ipv4-after-encoded-equals"),
]

KEPT = [
    pytest.param("order 4111111111111112 shipped", id="order-number-not-luhn"),
    pytest.param("order #2024-000123-4567", id="order-number-grouped"),
    pytest.param("ts 1764400000000 and 1764400000000123", id="epoch-milliseconds-and-microseconds"),
    pytest.param("2026-11-29T12:40:00+00:00", id="iso-timestamp"),
    pytest.param("2026-11-29 12.40.00.123456", id="timestamp-with-dots"),
    pytest.param("at 12:30:45", id="time-of-day"),
    pytest.param("version 1.2.3.4", id="version-after-word"),
    pytest.param("sdk v1.2.3.4", id="version-with-v"),
    pytest.param("build 10.0.19041.1", id="version-build-number"),
    pytest.param("release 1.2.3.4-beta", id="version-with-suffix"),
    pytest.param("OID 1.3.6.1.4.1.311", id="longer-dotted-sequence"),
    pytest.param("Python 3.11.7, Chrome/120.0.6099.109", id="software-versions"),
    pytest.param("256.1.1.1 is no address", id="octet-over-255"),
    pytest.param("localhost 127.0.0.1, ::1, 0.0.0.0, mask 255.255.255.0", id="addresses-that-identify-no-one"),
    pytest.param("key sk_live_4eC39HqL", id="public-key-prefix"),
    pytest.param(f"shown as {SHOWN}", id="key-as-the-console-shows-it"),
    pytest.param("api_key: sk_live_4eC39HqL", id="public-prefix-under-secret-name"),
    pytest.param("price 4,111.11 EUR; total $1,234,567.89; 4111.11", id="prices"),
    pytest.param("uuid 123e4567-e89b-12d3-a456-426614174000", id="uuid"),
    pytest.param("12345678-1234-5678-1234-567812345678", id="all-digit-uuid"),
    pytest.param("mac 00:1a:2b:3c:4d:5e", id="mac-address"),
    pytest.param("call +1 415 555 2671", id="phone-number"),
    pytest.param("std::vector and Foo::Bar and dead::beef", id="scope-operators"),
    pytest.param("ssn 000-12-3456 is never issued", id="invalid-ssn"),
    pytest.param("the bearer of this note", id="bearer-in-prose"),
    pytest.param("Basic configuration", id="basic-in-prose"),
    pytest.param("Don't send full credit-card numbers, government IDs, passwords, or other secrets.",
                 id="aup-clause"),
    pytest.param("max_tokens: 256, session_count: 3, keys: 4, pinned: true, passenger=2, author: Jane",
                 id="names-that-only-look-secret"),
    pytest.param("password=", id="empty-password"),
    pytest.param("Click-farm pattern: 40k pageviews a minute from three ASNs on one key.", id="summary-prose"),
    pytest.param("1800 events/min from one IP.", id="rate-summary"),
    pytest.param("3,112 signup events; 2.1 million events in 30 minutes", id="counts"),
    pytest.param("sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", id="hex-digest"),
]


def _matches(out: str, expected) -> bool:
    return bool(expected.fullmatch(out)) if isinstance(expected, re.Pattern) else out == expected


@pytest.mark.parametrize(("text", "gone", "expected"), LEAKS)
def test_a_secret_or_address_does_not_survive_its_disguise(text, gone, expected):
    out = redact_text(text)
    for secret in gone:
        assert secret not in out, out
    if expected is not None:
        assert _matches(out, expected), out


@pytest.mark.parametrize("text", KEPT)
def test_harmless_text_is_left_alone(text):
    assert redact_text(text) == text


@pytest.mark.parametrize("text", [p.values[0] for p in LEAKS + KEPT])
def test_redacting_twice_changes_nothing_more(text):
    once = redact_text(text)
    assert redact_text(once) == once


# --------------------------------------------------------------------------- structures

STRUCTURES = [
    pytest.param({"headers": [["Authorization", "Bearer x"], ["Accept", "text/html"]]},
                 {"headers": [["Authorization", REDACTED], ["Accept", "text/html"]]}, id="header-pairs"),
    pytest.param({"headers": (("Cookie", "sid=1"),)}, {"headers": [["Cookie", REDACTED]]}, id="header-tuples"),
    pytest.param({"headers": [{"name": "Authorization", "value": "Token abc"}, {"name": "Accept", "value": "*/*"}]},
                 {"headers": [{"name": "Authorization", "value": REDACTED}, {"name": "Accept", "value": "*/*"}]},
                 id="har-headers"),
    pytest.param({"params": [{"key": "X-Api-Key", "value": "abc", "enabled": True}]},
                 {"params": [{"key": "X-Api-Key", "value": REDACTED, "enabled": REDACTED}]},
                 id="named-entry-siblings"),
    pytest.param({"event": {"name": "password_reset", "count": 3}}, {"event": {"name": "password_reset", "count": 3}},
                 id="an-event-named-like-a-secret-is-no-name-value-record"),
    pytest.param({"body": '{"password": "hunter2", "user": "bob"}'},
                 {"body": '{"password": "[REDACTED]", "user": "bob"}'}, id="json-in-a-string"),
    pytest.param({"body": json.dumps(json.dumps({"password": "hunter2"}))},
                 {"body": json.dumps(json.dumps({"password": REDACTED}))}, id="json-in-a-string-in-a-string"),
    pytest.param({"a": {"b": [{"c": {"client_secret": {"id": 1, "v": [1, 2]}}}]}},
                 {"a": {"b": [{"c": {"client_secret": REDACTED}}]}}, id="secret-name-deep-with-object-value"),
    pytest.param({"pin": 1234, "cvv": "123", "otp": 123456, "ssn": 123456789, "passport": ["X1"], "has_password": True},
                 {"pin": REDACTED, "cvv": REDACTED, "otp": REDACTED, "ssn": REDACTED, "passport": REDACTED,
                  "has_password": REDACTED}, id="secret-names-any-value-type"),
    pytest.param({"access_tokens": ["a1", "b2"], "max_tokens": 256, "prompt_tokens": 12},
                 {"access_tokens": REDACTED, "max_tokens": 256, "prompt_tokens": 12}, id="tokens-but-not-token-counts"),
    pytest.param({"session": "abc", "sessionId": "x", "PHPSESSID": "y", "X-Auth-Token": "z", "session_count": 3},
                 {"session": REDACTED, "sessionId": REDACTED, "PHPSESSID": REDACTED, "X-Auth-Token": REDACTED,
                  "session_count": 3}, id="session-and-header-names"),
    pytest.param({TOKEN: "owner", CARD: 1}, {SHOWN: "owner", CARD_SHOWN: 1}, id="secrets-as-object-keys"),
    pytest.param({"cards": {"4111 1111 1111 1111": 1, "4111-1111-1111-1111": 2}},
                 {"cards": {CARD_SHOWN: 1, f"{CARD_SHOWN} #2": 2}}, id="keys-that-redact-alike-both-kept"),
    pytest.param({"api_key": TOKEN, "key_prefix": "sk_live_4eC39HqL", "api_key_prefix": "sk_live_4eC39HqL"},
                 {"api_key": SHOWN, "key_prefix": "sk_live_4eC39HqL", "api_key_prefix": "sk_live_4eC39HqL"},
                 id="keys-as-the-console-shows-them"),
    pytest.param({"service_token": SERVICE_TOKEN, "note": f"used {SERVICE_TOKEN}"},
                 {"service_token": REDACTED, "note": "used mmst_[REDACTED]"}, id="service-tokens"),
    pytest.param({"app_version": "1.2.3.4", "client_ip": "1.2.3.4"}, None, id="version-kept-address-masked"),
    pytest.param({"password": "", "token": None, "secret": [], "count": 7, "ok": False},
                 {"password": "", "token": None, "secret": [], "count": 7, "ok": False}, id="empty-values-stay"),
]


@pytest.mark.parametrize(("value", "expected"), STRUCTURES)
def test_structures_lose_secrets_at_any_depth(value, expected):
    out = redact(value)
    if expected is not None:
        assert out == expected
    else:
        assert out["app_version"] == "1.2.3.4" and re.fullmatch(IP.format(r"1\.2\.3\.x"), out["client_ip"])


def test_pseudonyms_are_stable_case_insensitive_and_distinct():
    first, again = redact_text("shopper@victim.example"), redact_text("Shopper@VICTIM.example")
    other = redact_text("someone@victim.example")
    assert first == again and first != other and EMAIL.fullmatch(first) and EMAIL.fullmatch(other)
    host9, host9_again, host10 = (redact_text(ip) for ip in ("203.0.113.9", "203.0.113.9", "203.0.113.10"))
    assert host9 == host9_again and host9 != host10 and host9[:15] == host10[:15] == "[IP 203.0.113.x"
    assert redact_text("2001:db8:85a3:1::1") != redact_text("2001:db8:85a3:2::1")  # same /48, other hosts


# --------------------------------------------------------------------------- depth and size


def _innermost(value, depth):
    for _ in range(depth):
        value = value[0] if isinstance(value, list) else value["a"]
    return value


@pytest.mark.parametrize("container", ["list", "dict"])
def test_a_hundred_thousand_levels_deep_is_redacted_without_recursion(container):
    depth = 100_000
    value = {"password": "hunter2", "card": CARD}
    for _ in range(depth):
        value = [value] if container == "list" else {"a": value}
    out = redact(value)
    assert _innermost(out, depth) == {"password": REDACTED, "card": CARD_SHOWN}
    assert _innermost(value, depth) == {"password": "hunter2", "card": CARD}  # the input is not changed


def test_deeply_nested_json_in_a_string_and_cycles_do_not_break_it():
    deep = "[" * 100_000 + f'"{CARD}"' + "]" * 100_000
    assert CARD not in redact({"body": deep})["body"]
    cyclic: list = ["password=hunter2"]
    cyclic.append(cyclic)
    out = redact(cyclic)
    assert out[0] == f"password={REDACTED}" and out[1] is out


# A megabyte of each shape that makes naive patterns backtrack; bench/redaction.py times them.
ADVERSARIAL = {
    "digits": "4" * 1_000_000,
    "spaces": " " * 1_000_000,
    "card-groups": "4444 " * 200_000,
    "digits-and-dots": "1." * 500_000,
    "secret-names": "password=" * 111_111,
    "open-quotes": 'password:"' * 100_000,
    "colons": "1:" * 500_000,
    "at-signs": "a@" * 500_000,
    "percent": "%" * 1_000_000,
}


@pytest.mark.parametrize("text", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_a_megabyte_of_adversarial_input_is_redacted(text):
    out = redact_text(text)
    assert isinstance(out, str) and len(out) > 0
