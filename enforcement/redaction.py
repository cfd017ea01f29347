"""Evidence redaction, applied before anything is stored or e-mailed. Pure functions: no Django, no database.

What goes, in text at any position (glued to letters, inside URLs, JSON, form bodies, percent-encoded):
- Millimetric key tokens: kept as kind prefix + first 8 + "..." + last 4 (the public key prefix, kind prefix
  + exactly 8 characters, is not a secret and stays); service tokens (``mmst_``): ``mmst_[REDACTED]``;
  JWTs, bearer credentials, Basic credentials, PEM private keys, passwords in ``scheme://user:password@host``
  URLs.
- The value after a secret-looking name (``password=``, ``"api_key": "..."``, ``\\"token\\": \\"...\\"``,
  ``Authorization: <any scheme> ...``, ``Cookie: ...``, ``["Authorization", "Bearer x"]``).
- Luhn-valid card numbers of 13-19 digits, contiguous or in card-like groups (``[CARD REDACTED ...1111]``);
  US SSNs (``[SSN REDACTED]``).
- Third parties' addresses, pseudonymised so staff can still correlate: ``[EMAIL 1a2b3c4d@example.com]``,
  ``[IP 203.0.113.x 1a2b3c4d]`` (IPv4 /24 kept), ``[IP 2001:db8:85a3::/48 1a2b3c4d]`` (IPv6 /48 kept, as
  analytics tools anonymise), the hash a keyed BLAKE2b of the whole address.
In structures (``redact``): the values of secret-looking field names at any depth, whatever their type; the
sibling of an entry that names a secret (``{"name": "Authorization", "value": ...}``, ``[name, value]``
pairs); JSON inside strings; dictionary keys as text.

Left alone on purpose: public key prefixes; loopback, unspecified, multicast and reserved addresses; dotted
quads after "version", "build", "v", under version-named fields or inside longer dotted runs; digit runs
that start with 0 or 1 (no card network does; timestamps and zero-padded ids do); secrets in prose with
no separator ("the password is x"); encodings other than percent-encoding (base64, hex, HTML entities).

No library: scrubadub, presidio, commonregex and detect-secrets find generic PII or secrets in files, with
their own output formats (presidio needs spaCy models, commonregex has not been released since 2014), and
none knows our token formats or keeps the prefix and last four the console shows. The standard library
validates what regexes cannot (``ipaddress``) and hashes (``hashlib.blake2b``).

Linear time: every pattern either starts only at the beginning of a run of its characters (a look-behind)
or after a fixed literal, and scans that run once (possessive quantifiers, no nested open repetition), so
adversarial input (a megabyte of digits, spaces, ``password=``, colons) costs a few passes over the text
(``bench/redaction.py``). Structures are walked with an explicit stack, never recursion, so any depth works.
"""

import base64
import binascii
import functools
import hashlib
import ipaddress
import json
import re
from typing import Any
from urllib.parse import unquote_plus

from accounts.tokens import KIND_PREFIXES, PREFIX_LENGTH

REDACTED = "[REDACTED]"

# The pseudonyms' key is public (it is in this file): the hash is for correlating ("the same shopper in
# three cases"), not for anonymity; a low-entropy local part can be found by trying candidates. A secret
# key would need settings, and this module stays pure. Changing it breaks correlation with stored rows.
_PSEUDONYM_KEY = b"millimetric-redaction-pseudonym-v1"

# Invisible characters that would split a secret so no pattern sees it; they carry nothing and go.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))

_KINDS = "|".join(re.escape(prefix) for prefix in KIND_PREFIXES.values())
_PUBLIC_CHARS = PREFIX_LENGTH - len(next(iter(KIND_PREFIXES.values())))  # 8: the public part of a prefix
# No left boundary: "apikey_sk_live_..." and "%20sk_live_..." hide a token from \b. The body stops where
# the next token starts, so two glued tokens are both found.
_KEY_TOKEN = re.compile(rf"(?P<kind>{_KINDS})(?P<body>(?:(?!{_KINDS})[A-Za-z0-9])+)")
# A value that is (or already shows) a key the way the console shows keys: a prefix, or a masked token.
_SHOWN_KEY = re.compile(rf"(?:{_KINDS})[A-Za-z0-9]{{1,{_PUBLIC_CHARS}}}(?:\.\.\.[A-Za-z0-9]{{0,4}})?")
_SERVICE_TOKEN = re.compile(r"mmst_[A-Za-z0-9_\-]{8,}+")
_JWT = re.compile(r"eyJ(?<![A-Za-z0-9_\-]eyJ)[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]*+")
# A PEM private key block (the body is base64 and line breaks; its END line is optional: it may be cut off).
_PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----[A-Za-z0-9+/=\s\\]*+(?:-----END [A-Z ]{0,20}PRIVATE KEY-----)?"
)
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z](?<![A-Za-z0-9+.\-][A-Za-z])[A-Za-z0-9+.\-]*+://[^\s/?#@:]*+:)(?P<password>[^\s/?#@]++)@"
)
_BEARER = re.compile(r"(?P<head>[Bb](?<![A-Za-z][Bb])(?i:earer)(?:[ \t]++|%20|\+))(?P<cred>[A-Za-z0-9._~+/\-]++=*+)")
_BASIC = re.compile(r"(?P<head>[Bb](?<![A-Za-z][Bb])(?i:asic)(?:[ \t]++|%20|\+))(?P<cred>[A-Za-z0-9+/]{4,}+={0,2}+)")
_SSN = re.compile(r"\d(?<!\d\d)\d\d-\d\d-\d{4}(?!\d)")  # then: not 000, 666, 9xx; not 00; not 0000

# Card numbers: a run of digit groups with short separators (spaces, dots, dashes, their Unicode kin),
# then, in Python, the windows of it that look like a card.
_CARD_SEPARATOR = "[ \t.\\-\u00a0\u2007\u2009\u202f\u2010-\u2013]{1,3}"
_DIGIT_RUN = re.compile(rf"\d(?<!\d\d)\d*+(?:{_CARD_SEPARATOR}\d++)*+")
_DIGITS = re.compile(r"\d+")

_EMAIL = re.compile(
    r"(?P<local>[\w.%+\-](?<![\w.%+\-][\w.%+\-])(?<!\[EMAIL .)[\w.%+\-]{0,63}+)"
    r"@(?P<domain>(?:[\w\-]{1,63}\.)+[^\W\d_]{2,63}+)(?![\w\-])"
)
# Four dotted numbers (each 0-255, checked by ipaddress), not inside a longer dotted run (1.2.3.4.5, OIDs),
# not glued to a digit, not "v1.2.3.4" or "1.2.3.4-beta".
_IPV4 = re.compile(
    r"[0-9](?<![0-9.vV][0-9])(?<!\[IP [0-9])[0-9]{0,2}+(?:\.[0-9]{1,3}+){3}(?![0-9A-Za-z_]|\.[0-9]|-[A-Za-z])"
)
# A run of hex digits, colons and dots with two colons or more; ipaddress says whether it is an address.
_IPV6_CANDIDATE = re.compile(r"[0-9A-Fa-f.:](?<![\w:.][0-9A-Fa-f.:])(?<!\[IP .)[0-9A-Fa-f:.]*+")
_VERSION_BEFORE = re.compile(r"\b(?:version|ver|build|release|rev)[\W_]{0,4}$", re.IGNORECASE)

# Field names that signal a secret, matched on the normalised name ("_x_api_key_"): substrings where
# they are unambiguous, whole words where they are short ("pin", "ssn", but not "spin", "classname");
# "access_tokens" but not the token counts of language-model usage ("max_tokens", "prompt_tokens").
_SECRET_NAME = re.compile(
    r"pass(?:word|wd|phrase|code)|_pass_|pwd|secret|token_"
    r"|(?<!max_)(?<!num_)(?<!prompt_)(?<!completion_)(?<!total_)(?<!input_)(?<!output_)tokens_|api_?key|authori[sz]ation|_auth_|credential|_creds?_"
    r"|cookie|private_?key|access_?key|sess(?:ion)?_?id|_session_$|session_?key"
    r"|_(?:ssn|pin|otp|cvv2?|cvc2?|jwt|bearer|[cx]srf)_"
    r"|social_?security|passport|national_?id|tax_?id|driver_?s?_?licen[cs]e"
)
# Whose values are whole header lines (any scheme, "Cookie: a=1; b=2"), not one word.
_HEADER_NAME = re.compile(r"authori[sz]ation|cookie")
_VERSION_NAME = re.compile(r"(?:version(?:_name|_code|_string)?|_ver|build|release|_rev)_$")  # app_version
# Name/value records: {"name": "Authorization", "value": "..."} (HAR, Postman). Not {"name": "password_reset",
# "count": 3}, an event's name: a record has a value entry.
_NAMING_KEYS = {"name", "key", "header", "field", "param", "parameter"}
_VALUE_KEYS = {"value", "values", "val", "content", "data"}
_HEADERISH = re.compile(r"[A-Za-z0-9_.\-\[\] ]+")

# In text: a name with a secret-looking stem, then a separator, then the value. The stem is found first (it
# is rare), the name around it once (its whole run), and the value is matched only after a secret name, so
# "a=a=a=..." or "tokentoken..." cost one pass.
_STEMS = "pass|pwd|secret|token|key|auth|cred|cookie|sess|ssn|pin|otp|cvv|cvc|jwt|bearer|srf|social|national|tax|driver"
_STEM = re.compile(_STEMS)  # searched in the lower-cased text: literals let the regex engine skip ahead
_STEM_ANY_CASE = re.compile(_STEMS, re.IGNORECASE)  # where lower-casing changes the length (rare Unicode)
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-[]")
_NAME_REST = re.compile(r"[A-Za-z0-9_.\-\[\]]*+")
# name=value, name: value, "name" => value; ("name", value) when the name is quoted; --name value.
_SEPARATOR = re.compile(
    r"(?P<quote>\\*[\"'])?[ \t]*+(?P<sep>=>|==?|:|,[ \t]*+(?=\\*[\"'])|(?<=[ \t])(?=[^\s\-=:]))[ \t]*+"
)
_VALUE_LEAD = re.compile(r"\\*[\"'](?:value|val|content|data)\\*[\"'][ \t]*+:[ \t]*+", re.IGNORECASE)
# Quoted: "..." with escapes, '...', or \"...\" (JSON in a string, up to 8 backslashes: deeper nesting is
# not written by hand, and an unbounded run would make the closing-quote check quadratic).
_QUOTED_VALUE = re.compile(
    r"\s*+(?:\"(?:[^\"\\\r\n]|\\.)*+\"?|'(?:[^'\\\r\n]|\\.)*+'?|(\\{1,8}+)([\"'])(?:(?!\1\2)[^\r\n])*+(?:\1\2)?)"
)
_BARE_VALUE = re.compile(r"\s*+[^\s&,;\"'<>{}\[\]]++")
# A header's value runs to the end of its line (Digest has quotes inside), or to the quote the line is in.
_BARE_HEADER_VALUE = {
    "": re.compile(r"[ \t]*+[^\r\n&]++"),
    '"': re.compile(r"[ \t]*+[^\r\n&\"]++"),
    "'": re.compile(r"[ \t]*+[^\r\n&']++"),
}


_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_valid(digits: str) -> bool:
    values = [int(char) for char in reversed(digits)]
    return (sum(values[0::2]) + sum(_LUHN_DOUBLED[value] for value in values[1::2])) % 10 == 0


def _pseudonym(data: bytes) -> str:
    return hashlib.blake2b(data, key=_PSEUDONYM_KEY, digest_size=4).hexdigest()


def _normalise(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name))
    return "_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") + "_"


_normalise_short = functools.lru_cache(maxsize=4096)(_normalise)


def _normal_name(name: str) -> str:
    """``xApiKey``, ``X-API-KEY``, ``x.api_key`` -> ``_x_api_key_``. Names repeat (the same fields in every
    event), so short ones are remembered; long ones are not, so memory stays bounded."""
    return _normalise_short(name) if len(name) <= 128 else _normalise(name)


def _is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(_normal_name(name)))


def _names_a_secret(value: Any) -> bool:
    """Whether a value is the name of a secret ("Authorization", "X-Api-Key"), not text that mentions one."""
    return isinstance(value, str) and len(value) <= 100 and bool(_HEADERISH.fullmatch(value)) and _is_secret_name(value)


def _shows_key_only(value: str) -> bool:
    return bool(_SHOWN_KEY.fullmatch(value.strip()))


# --------------------------------------------------------------------------- text rules


def _mask_key(match: re.Match) -> str:
    kind, body = match.group("kind"), match.group("body")
    if len(body) <= _PUBLIC_CHARS:
        return match.group(0)  # a public key prefix, not a token
    tail = body[-4:] if len(body) >= 2 * _PUBLIC_CHARS else ""  # a short fragment shows nothing past the prefix
    return f"{kind}{body[:_PUBLIC_CHARS]}...{tail}"


def _mask_bearer(match: re.Match) -> str:
    cred = match.group("cred")
    if _shows_key_only(cred) or not ((len(cred) >= 6 and any(c.isdigit() for c in cred)) or len(cred) >= 20):
        return match.group(0)  # "bearer of", or a key already shown as the console shows keys
    return match.group("head") + REDACTED


def _mask_basic(match: re.Match) -> str:
    try:
        decoded = base64.b64decode(match.group("cred"), validate=True)
    except (binascii.Error, ValueError):
        return match.group(0)  # "Basic configuration" is not base64 of user:password
    return match.group("head") + REDACTED if b":" in decoded else match.group(0)


def _mask_url_password(match: re.Match) -> str:
    password = match.group("password")
    return match.group(0) if password == REDACTED else f"{match.group('head')}{REDACTED}@"


def _name_around(text: str, stem: re.Match, floor: int) -> tuple[int, int]:
    """The name (a run of name characters) a stem occurs in; it starts no earlier than ``floor``."""
    start = stem.start()
    while start > floor and text[start - 1] in _NAME_CHARS:
        start -= 1
    return start, _NAME_REST.match(text, stem.end()).end()


def _secret_value_span(text: str, name: str, separator: re.Match, quoted_in: str) -> tuple[int, int] | None:
    """Where the value after a secret name is, if there is one to redact."""
    sep = separator.group("sep")
    if (sep.startswith(",") and not separator.group("quote")) or (not sep and not name.startswith("--")):
        return None  # "passwords, ..." in prose; "password hunter2" only as a --option
    if not _is_secret_name(name):
        return None  # its value is scanned like any text: it may hold "password=..." itself
    value_at = separator.end()
    if sep.startswith(","):  # ("Authorization", "...") or "name": "Authorization", "value": "..."
        lead = _VALUE_LEAD.match(text, value_at)
        value_at = lead.end() if lead else value_at
    value = _QUOTED_VALUE.match(text, value_at)
    if value is None and _HEADER_NAME.search(_normal_name(name)):
        value = _BARE_HEADER_VALUE[quoted_in].match(text, value_at)  # any scheme, "Cookie: a=1; b=2": the whole line
    value = value or _BARE_VALUE.match(text, value_at)
    if value is None:
        return None
    raw = value.group(0)
    content = raw.strip().strip("\\\"'")
    if not content or content.startswith(REDACTED) or _shows_key_only(content):
        return None  # nothing, already redacted, or a key as the console shows keys
    return value.start() + len(raw) - len(raw.lstrip()), value.end() - (len(raw) - len(raw.rstrip()))


def _redact_named_values(text: str, lowered: str) -> str:
    stems, haystack = (_STEM, lowered) if len(lowered) == len(text) else (_STEM_ANY_CASE, text)
    out, pos, search_from = [], 0, 0
    while stem := stems.search(haystack, search_from):
        start, end = _name_around(text, stem, search_from)
        search_from = end
        separator = _SEPARATOR.match(text, end)
        if separator is None:
            continue
        quoted_in = text[start - 1] if start and text[start - 1] in "\"'" and not separator.group("quote") else ""
        span = _secret_value_span(text, text[start:end], separator, quoted_in)
        if span is not None:
            out.append(text[pos:span[0]])
            out.append(REDACTED)
            pos = search_from = span[1]
    out.append(text[pos:])
    return "".join(out)


def _card_end(run: str, groups: list[tuple[int, int, str]], first: int) -> int | None:
    """The end (exclusive group index) of a card number starting at group ``first``, or None."""
    head = groups[first][2]
    if head[0] in "01" or int(head[0]) < 2:
        return None  # no card network starts with 0 or 1; millisecond timestamps start with 1
    if 13 <= len(head) <= 19:
        decimal = first > 0 and run[groups[first - 1][1]:groups[first][0]] == "."
        return first + 1 if not decimal and luhn_valid(head) else None
    if len(head) != 4:
        return None  # written in groups: 4-4-4-4, 4-6-5, 4-4-4-4-3 ...; never 2024-01-15 12.30.45
    digits, ends = head, []
    for index in range(first + 1, min(first + 6, len(groups))):  # 19 digits: 4 + five groups of 3
        group = groups[index][2]
        if not 3 <= len(group) <= 6 or len(digits) + len(group) > 19:
            break
        digits += group
        if len(digits) >= 13:
            ends.append((index + 1, digits))
    for index, candidate in reversed(ends):
        if luhn_valid(candidate):
            return index
    return None


def _mask_cards(match: re.Match) -> str:
    run = match.group(0)
    if len(run) < 13:
        return run
    groups = [(digits.start(), digits.end(), digits.group()) for digits in _DIGITS.finditer(run)]
    out, pos, index = [], 0, 0
    while index < len(groups):
        end = _card_end(run, groups, index)
        if end is None:
            index += 1
            continue
        digits = "".join(group[2] for group in groups[index:end])
        out.append(run[pos:groups[index][0]])
        out.append(f"[CARD REDACTED ...{''.join(str(int(d)) for d in digits[-4:])}]")
        pos, index = groups[end - 1][1], end
    out.append(run[pos:])
    return "".join(out)


def _mask_ssn(match: re.Match) -> str:
    area, group, serial = match.group(0).split("-")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return match.group(0)  # never issued
    return "[SSN REDACTED]"


def _mask_email(match: re.Match) -> str:
    local, domain = match.group("local"), match.group("domain").lower()
    return f"[EMAIL {_pseudonym(f'{local.lower()}@{domain}'.encode())}@{domain}]"


def _ip_identifies_no_one(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_loopback or address.is_unspecified or address.is_multicast or address.is_reserved


def _mask_ipv4_address(address: ipaddress.IPv4Address) -> str:
    network = str(address).rsplit(".", 1)[0]
    return f"[IP {network}.x {_pseudonym(address.packed)}]"


def _masker_ipv4(text: str, versionish: bool):
    def mask(match: re.Match) -> str:
        try:
            address = ipaddress.IPv4Address(match.group(0))
        except ValueError:
            return match.group(0)  # 256.1.1.1, 01.2.3.4
        before = text[max(0, match.start() - 16):match.start()]
        if versionish or _ip_identifies_no_one(address) or _VERSION_BEFORE.search(before):
            return match.group(0)
        return _mask_ipv4_address(address)

    return mask


def _mask_ipv6(match: re.Match) -> str:
    candidate = match.group(0)
    # Trailing dots and colons are the sentence's ("at 2001:db8::1."), except the "::" that ends a compressed
    # address ("2001:db8::", "2001:db8::: refused"): kept, or the address would not parse and would stay.
    address_text = candidate.rstrip(".:")
    if candidate.rstrip(".").endswith("::"):
        address_text += "::"
    if address_text.count(":") < 2 or not any(c.isdigit() for c in address_text):
        return candidate  # "dead::beef" is as likely a C++ scope as an address
    try:
        address = ipaddress.IPv6Address(address_text)
    except ValueError:
        return candidate  # 12:30:45, a MAC address
    if address.ipv4_mapped is not None:
        masked = _mask_ipv4_address(address.ipv4_mapped)
    elif _ip_identifies_no_one(address):
        return candidate
    else:
        network = ipaddress.IPv6Network(f"{address}/48", strict=False).network_address
        masked = f"[IP {network}/48 {_pseudonym(address.packed)}]"
    return masked + candidate[len(address_text):]


def _redact_once(text: str, versionish: bool) -> str:
    """One pass of every rule; each runs only if the text has the characters it needs (cheap to check)."""
    text = text.translate(_INVISIBLE)
    if "_live_" in text:
        text = _KEY_TOKEN.sub(_mask_key, text)
    if "mmst_" in text:
        text = _SERVICE_TOKEN.sub("mmst_" + REDACTED, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "PRIVATE KEY-----" in text:
        text = _PEM_PRIVATE_KEY.sub(REDACTED, text)
    if "://" in text:
        text = _URL_PASSWORD.sub(_mask_url_password, text)
    lowered = text.lower()
    if "bearer" in lowered:
        text = _BEARER.sub(_mask_bearer, text)
    if "basic" in lowered:
        text = _BASIC.sub(_mask_basic, text)
    text = _redact_named_values(text, text.lower())
    if "@" in text:
        text = _EMAIL.sub(_mask_email, text)
    if "-" in text:
        text = _SSN.sub(_mask_ssn, text)
    text = _DIGIT_RUN.sub(_mask_cards, text)
    if ":" in text:
        text = _IPV6_CANDIDATE.sub(_mask_ipv6, text)
    if "." in text:
        text = _IPV4.sub(_masker_ipv4(text, versionish), text)
    return text


def _redact_text(text: str, versionish: bool = False) -> str:
    """Short texts repeat from report to report (evidence's keys, windows, user agents, a shopper's address):
    they are remembered, and long ones are not, so memory stays bounded (as for names)."""
    if len(text) <= _REMEMBERED_LENGTH:
        return _redact_short(text, versionish)
    return _redact_any(text, versionish)


def _redact_any(text: str, versionish: bool) -> str:
    redacted = current = _redact_once(text, versionish)
    # Percent-encoding ("password%3Dhunter2", "4111%201111...", "a%40b.example") hides secrets from the
    # patterns. Decode up to three times (double encoding); where a level reveals something new, that level,
    # redacted, is the result. Text where decoding reveals nothing stays as it was written.
    for _ in range(3):
        if "%" not in current and "+" not in current:
            break
        decoded = unquote_plus(current)
        if decoded == current:
            break
        current = _redact_once(decoded, versionish)
        if current != decoded:
            redacted = current
    return redacted


_REMEMBERED_LENGTH = 128
_redact_short = functools.lru_cache(maxsize=8192)(_redact_any)


def redact_text(text: str) -> str:
    """Redact secrets and third parties' addresses in free text (a summary, a log line, a body)."""
    return _redact_text(text)


# --------------------------------------------------------------------------- structures


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and len(value) == 0)


def _secret_value(value: Any) -> Any:
    """The value of a secret-named field: gone, whatever its type; a key stays as the console shows keys."""
    if _is_empty(value):
        return value
    if isinstance(value, str) and (_KEY_TOKEN.fullmatch(value.strip()) or _shows_key_only(value)):
        return redact_text(value)
    return REDACTED


def _redact_string(value: str, versionish: bool) -> str:
    stripped = value.strip()
    if len(stripped) > 1 and stripped[0] == stripped[-1] == '"':
        # A JSON-encoded string (whose content may be JSON again): redacted inside, encoded back.
        try:
            inner = json.loads(stripped)
        except ValueError:
            inner = None
        if isinstance(inner, str):
            redacted_inner = _redact_string(inner, versionish)
            if redacted_inner != inner:
                return json.dumps(redacted_inner, ensure_ascii=False)
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        # JSON inside a string: redacted as a structure (names, pairs), written back only if changed.
        try:
            parsed = json.loads(stripped)
            if isinstance(parsed, dict | list):
                redacted = redact(parsed)
                if redacted != parsed:
                    return json.dumps(redacted, ensure_ascii=False)
        except (ValueError, RecursionError):
            pass  # not JSON, or nested too deep to parse: the text rules still apply
    return _redact_text(value, versionish)


def _unique_key(out: dict, key: str, taken: dict[str, int]) -> str:
    """Two keys may redact to the same text (two cards ending in 1111): keep both entries. ``taken`` remembers
    the last number given to each key, so a thousand colliding keys cost a thousand steps, not a million."""
    if key not in out:
        return key
    n = taken.get(key, 1)
    while True:
        n += 1
        if f"{key} #{n}" not in out:
            taken[key] = n
            return f"{key} #{n}"


def redact(value: Any, *, key: str | None = None) -> Any:
    """Redact a JSON-like value at any depth (an explicit stack, no recursion); the input is not changed.

    ``key`` is the field name the value is stored under; secret-looking names lose their values.
    Tuples come back as lists. Shared and cyclic containers are redacted once and shared alike.
    """
    root: list[Any] = [None]
    copies: dict[int, Any] = {}
    stack: list[tuple[Any, str | None, Any, Any]] = [(value, key, root, 0)]
    while stack:
        item, name, target, slot = stack.pop()
        if name is not None and _is_secret_name(name):
            target[slot] = _secret_value(item)
        elif isinstance(item, dict | list | tuple) and id(item) in copies:
            target[slot] = copies[id(item)]
        elif isinstance(item, dict):
            out: dict[str, Any] = {}
            taken: dict[str, int] = {}
            copies[id(item)] = target[slot] = out
            naming = {k for k, v in item.items() if str(k).lower() in _NAMING_KEYS and _names_a_secret(v)}
            if naming and not any(str(k).lower() in _VALUE_KEYS for k in item):
                naming = set()
            for k, v in item.items():
                new_key = _unique_key(out, redact_text(str(k)), taken)
                out[new_key] = None
                if naming and k not in naming:
                    out[new_key] = _secret_value(v)  # the value of an entry named "Authorization", "password"
                else:
                    stack.append((v, str(k), out, new_key))
        elif isinstance(item, list | tuple):
            copies[id(item)] = target[slot] = items = [None] * len(item)
            # A [name, value] pair: ["Authorization", "Bearer x"], ("password", "hunter2").
            pair_name = item[0] if len(item) == 2 and _names_a_secret(item[0]) else None
            stack.extend((v, pair_name if index == 1 else None, items, index) for index, v in enumerate(item))
        elif isinstance(item, str):
            target[slot] = _redact_string(item, bool(name) and bool(_VERSION_NAME.search(_normal_name(name))))
        elif isinstance(item, int) and not isinstance(item, bool) and 10**12 <= abs(item) < 10**19:
            text = str(item)  # a card number sent as a number
            redacted = redact_text(text)
            target[slot] = item if redacted == text else redacted
        else:
            target[slot] = item
    return root[0]
