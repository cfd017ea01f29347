#!/usr/bin/env python
"""Redaction of a megabyte of adversarial text, next to one plain regex pass over the same text.

    python bench/redaction.py [--size 1000000] [--repeats 3]

Each shape is built to make a naive pattern backtrack (a run of digits, of card-like groups, of
``password=``, of open quotes, of colons ...). For each: the best of ``--repeats`` runs of
``redact_text``, and in the same run the raw baseline, one ``re.findall(r"\\d+")`` over the text (a
single linear pass of the regex engine, the floor of any pattern). Target: every shape under 2 s; the
ratio shows how many passes' worth of work redaction does. Then ``redact`` on a megabyte of JSON-like
evidence (events with secrets, cards and addresses in them), and on a list nested 100,000 deep.

Biases: best-of-N hides the noise of a shared machine but also the cost of a cold cache; the shapes are
the ones we thought of, chosen against our own patterns; no database, no Django (the module is pure).
"""

import argparse
import copy
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from enforcement.redaction import redact, redact_text  # noqa: E402

TARGET_SECONDS = 2.0


def shapes(size: int) -> dict[str, str]:
    units = {
        "digits": "4", "spaces": " ", "digit-space": "4 ", "card-groups": "4444 ",
        "card-numbers": "4111 1111 1111 1111 ", "digits-and-dots": "1.", "addresses": "203.0.113.9 ",
        "key-prefixes": "sk_live_", "key-tokens": "sk_live_4eC39HqLyjWDarjtT1zdp7dc1234abcd ",
        "secret-names": "password=", "open-quotes": 'password:"', "escaped-quotes": 'password:\\"', "pairs": "a=",
        "colons": ":", "hex-colons": "1:", "at-signs": "a@", "emails": "a@b.example ", "long-domain": "b.",
        "jwt-starts": "eyJ", "percent": "%", "encoded": "%41", "pluses": "+", "urls": "x://a:", "bearer": "bearer ",
        "backslashes": "\\", "option": "--password ", "quoted-names": '"password", ', "ssn-like": "123-45-",
        "pem-begins": "-----BEGIN PRIVATE KEY-----",
    }
    built = {name: unit * (size // len(unit)) for name, unit in units.items()}
    built["long-domain"] = "a@" + built["long-domain"]
    return built


def best_of(repeats: int, fn, *args) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    baseline_pattern = re.compile(r"\d+")
    worst = 0.0
    print(f"{'shape':16} {'redact_text':>12} {'one pass':>10} {'ratio':>7}")
    for name, text in shapes(args.size).items():
        seconds = best_of(args.repeats, redact_text, text)
        baseline = best_of(args.repeats, baseline_pattern.findall, text)
        worst = max(worst, seconds)
        print(f"{name:16} {seconds * 1000:10.0f} ms {baseline * 1000:8.1f} ms {seconds / baseline:6.0f}x")
    verdict = "ok" if worst < TARGET_SECONDS else "SLOW"
    print(f"worst {worst * 1000:.0f} ms (target < {TARGET_SECONDS * 1000:.0f} ms): {verdict}")

    props = {"email": "shopper@victim.example", "card": "4111 1111 1111 1111", "ip": "203.0.113.9",
             "note": "password=hunter2 sent with Bearer abc123def"}
    event = {"event": "checkout", "props": props, "headers": [["Authorization", "Bearer x"], ["Accept", "*/*"]]}
    evidence = {"events": [copy.deepcopy(event) for _ in range(args.size // 250)]}  # not shared: each is walked
    print(f"redact, {len(evidence['events'])} events (~{args.size // 1_000_000} MB as JSON): "
          f"{best_of(args.repeats, redact, evidence) * 1000:.0f} ms")
    deep: list = ["password=hunter2"]
    for _ in range(100_000):
        deep = [deep]
    print(f"redact, a list nested 100,000 deep: {best_of(args.repeats, redact, deep) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
