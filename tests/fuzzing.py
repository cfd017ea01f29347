"""How much, and from which seed, the schemathesis run generates (``tests/api/test_schema.py``).

``SCHEMATHESIS_MAX_EXAMPLES`` (default 25: quick for developers; ``.ci/run`` sets more) bounds the
examples per operation. ``SCHEMATHESIS_SEED`` unset: the same examples on every run (derandomized);
``random``: a new seed each run; a number: that seed, to replay a run. The seed in use is printed in
the header of every pytest run, so a failure found by a random seed can be replayed.
"""

import os
import random

from django.core.exceptions import ImproperlyConfigured

from config.env import env_int


def _seed() -> int | None:
    raw = (os.environ.get("SCHEMATHESIS_SEED") or "").strip()
    if not raw:
        return None
    if raw == "random":
        return random.SystemRandom().randrange(2**32)
    if not raw.isdigit():
        raise ImproperlyConfigured(f"SCHEMATHESIS_SEED={raw!r}: use a number, or random.")
    return int(raw)


MAX_EXAMPLES = env_int("SCHEMATHESIS_MAX_EXAMPLES", 25, minimum=1)
SEED = _seed()  # once per test process: the header and the tests see the same one


def describe() -> str:
    if SEED is None:
        return f"schemathesis: {MAX_EXAMPLES} examples per operation, derandomized (set SCHEMATHESIS_SEED=random)"
    return f"schemathesis: {MAX_EXAMPLES} examples per operation, seed {SEED} (replay: SCHEMATHESIS_SEED={SEED})"
