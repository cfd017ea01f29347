"""Demo data for the quick start: accounts with keys of every kind, staff for each role, cases in
different states. Idempotent: running it again changes nothing and prints the same logins and tokens."""

import hashlib
import string

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.tokens import KIND_PREFIXES, hash_token, prefix_of
from enforcement import services
from enforcement.actors import SYSTEM, Actor
from enforcement.models import Case, EnforcementAction

DEMO_PASSWORD = "demo-password-2026"
STAFF = [
    ("admin", None, True),
    ("alex.agent", "tns_agent", False),
    ("lee.lead", "tns_lead", False),
    ("lou.lead", "tns_lead", False),
    ("ada.auditor", "tns_auditor", False),
]
ACCOUNTS = [
    ("acct_demoacme0000001", "Acme Analytics Ltd", "ops@acme.example"),
    ("acct_demoblue0000002", "Bluebird Shop", "founder@bluebird.example"),
    ("acct_democlick000003", "ClickStorm Media", "billing@clickstorm.example"),
    ("acct_demodelta000004", "Delta Health Apps", "privacy@delta.example"),
    ("acct_demoecho0000005", "Echo Research Lab", "security@echo.example"),
]
_ALPHABET = string.ascii_letters + string.digits
GATE_DEMO_KEYS = [
    ("acct_demoacme0000001", "secret", "Acme Analytics, secret key: allowed"),
    ("acct_demodelta000004", "secret", "Delta Health Apps, secret key: throttled to 30/min"),
    ("acct_democlick000003", "publishable", "ClickStorm Media: refused once a lead approves its suspension"),
    ("acct_demoblue0000002", "publishable", "Bluebird Shop, publishable key: allowed (warned, not restricted)"),
]


def demo_token(account_id: str, kind: str) -> str:
    """Deterministic demo tokens, so the seed is idempotent and the printed tokens stay valid."""
    digest = hashlib.sha256(f"millimetric-demo:{account_id}:{kind}".encode()).digest()
    body = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest)[:32]
    return KIND_PREFIXES[kind] + body


class Command(BaseCommand):
    help = "Create demo accounts, keys, staff users and cases (idempotent)."

    def handle(self, *args, **options):
        with transaction.atomic():
            users = self._staff()
            tokens = self._inventory()
        self._cases(users)
        services.metrics_rollup()  # the metrics page has figures at once, not after beat's first roll-up
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"Staff logins (password for all: {DEMO_PASSWORD}):")
        for username, role, _ in STAFF:
            self.stdout.write(f"  {username:<12} {role or 'superuser'}")
        self.stdout.write("Demo API key tokens (for trying the gate):")
        for public_id, kind, note in GATE_DEMO_KEYS:
            self.stdout.write(f"  {tokens[(public_id, kind)]}  {note}")

    def _staff(self) -> dict:
        User = get_user_model()
        users = {}
        for username, role, superuser in STAFF:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"email": f"{username}@millimetric.ai", "is_staff": True, "is_superuser": superuser},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            if role:
                user.groups.add(Group.objects.get(name=role))
            users[username] = user
        return users

    def _inventory(self) -> dict[tuple[str, str], str]:
        tokens = {}
        for public_id, name, email in ACCOUNTS:
            account, _ = services.account_upsert(actor=SYSTEM, public_id=public_id, name=name, email=email)
            for kind in KIND_PREFIXES:
                token = demo_token(public_id, kind)
                services.key_upsert(
                    actor=SYSTEM, prefix=prefix_of(token), account=account, kind=kind,
                    token_sha256=hash_token(token), rate_limit_per_minute=1200 if kind != "publishable" else 600,
                    ip_rate_limit_per_minute=120, label=f"{kind} key",
                )
                tokens[(public_id, kind)] = token
        return tokens

    def _cases(self, users: dict) -> None:
        agent = Actor.for_user(users["alex.agent"])
        lead = Actor.for_user(users["lee.lead"])
        detector = Actor.system("demo-detector")

        def report(account, rule, external_id, summary, **extra):
            return services.violation_report(
                actor=detector, account=account, rule=rule, source="demo", external_id=external_id,
                summary=summary, **extra,
            )

        # An open case waiting for someone to pick it up.
        report("acct_demoacme0000001", "secrets-in-events", "demo-1",
               "Event property card_number carried full card numbers such as 4111 1111 1111 1111.",
               evidence={"property": "card_number", "sample": "4111111111111111", "events": 312})
        # A warning sent, waiting for the customer to fix things.
        r = report("acct_demoblue0000002", "covert-tracking", "demo-2",
                   "Consent banner missing on bluebird.example for EU visitors.")
        self._once(r.violation.case, lambda case: services.action_propose(
            actor=agent, case_id=case.pk, kind="warning", reason="Add a consent notice for EU visitors."))
        # A suspension requested by an agent, waiting for a lead's approval.
        r = report("acct_democlick000003", "spam-fraud", "demo-3",
                   "Click-farm pattern: 40k pageviews/min from 3 ASNs on one key.",
                   api_key=prefix_of(demo_token("acct_democlick000003", "publishable")), severity="high")
        self._once(r.violation.case, lambda case: services.action_propose(
            actor=agent, case_id=case.pk, kind="suspend", reason="Fraudulent traffic inflating metrics."))
        # A throttle applied by a lead on a key that sent health data.
        r = report("acct_demodelta000004", "special-category-data", "demo-4",
                   "Event properties include diagnosis codes.")
        self._once(r.violation.case, lambda case: services.action_propose(
            actor=lead, case_id=case.pk, kind="throttle", reason="Slow ingest until the diagnosis field is removed.",
            rate_limit_per_minute=30,
            key_prefixes=[prefix_of(demo_token("acct_demodelta000004", "secret"))]))
        # Good-faith security research: recorded, never actioned automatically; a closed case.
        r = report("acct_demoecho0000005", "security-research", "demo-5",
                   "Researcher reported an IDOR through security@millimetric.ai.")
        if r.violation.case.status != Case.Status.CLOSED:
            services.case_resolve(actor=lead, case_id=r.violation.case_id,
                                  resolution="Safe harbour: good-faith research, reported properly.")
        # Apply what is scheduled now, so the demo shows keys in their new state even before the worker runs.
        for action_id in EnforcementAction.objects.filter(status="scheduled").values_list("pk", flat=True):
            services.action_apply(action_id=action_id)

    @staticmethod
    def _once(case: Case, propose) -> None:
        if not case.actions.exists():
            propose(case)
