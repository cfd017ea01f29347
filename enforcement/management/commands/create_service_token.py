"""Create a service token for automation; prints the token once, alone on the last line.

    TOKEN=$(python manage.py create_service_token ci --scopes cases:read | tail -n 1)
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from enforcement.actors import Actor
from enforcement.errors import ValidationFailed
from enforcement.models import ServiceToken
from enforcement.services import service_token_create


class Command(BaseCommand):
    help = "Create a service token with the given scopes; the token is shown once and only its hash is kept."

    def add_arguments(self, parser):
        parser.add_argument("name", help="A unique name, e.g. the detector or script that uses it.")
        parser.add_argument(
            "--scopes", required=True,
            help=f"Comma-separated, from: {', '.join(ServiceToken.Scope.values)}.",
        )
        parser.add_argument(
            "--trusted", action="store_true",
            help="Its reports count as a trusted source (act-first on critical violations).",
        )
        parser.add_argument("--expires-in-days", type=int, default=None, help="Expire after this many days.")

    def handle(self, *args, name, scopes, trusted, expires_in_days, **options):
        scope_list = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        if not scope_list:
            raise CommandError("--scopes: give at least one scope.")
        expires_at = None
        if expires_in_days is not None:
            if expires_in_days < 1:
                raise CommandError("--expires-in-days must be at least 1.")
            expires_at = timezone.now() + timedelta(days=expires_in_days)
        try:
            token, raw = service_token_create(
                actor=Actor.system("manage.py create_service_token"), name=name, scopes=scope_list,
                trusted=trusted, expires_at=expires_at,
            )
        except ValidationFailed as exc:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.fields.items())
            raise CommandError(f"{exc.message} {problems}") from None
        expiry = f", expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else ""
        self.stderr.write(
            f"Created service token {token.name!r} (scopes: {', '.join(token.scopes)}"
            f"{', trusted' if token.trusted else ''}{expiry}). It is shown once, below; only its hash is kept."
        )
        self.stdout.write(raw)
