"""Revoke a service token by name; requests with it get 401 from then on."""

from django.core.management.base import BaseCommand, CommandError

from enforcement.actors import Actor
from enforcement.models import ServiceToken
from enforcement.services import service_token_revoke


class Command(BaseCommand):
    help = "Revoke a service token by name."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        token = ServiceToken.objects.filter(name=name).first()
        if token is None:
            raise CommandError(f"No service token named {name!r}.")
        if token.revoked_at is not None:
            self.stdout.write(f"Service token {name!r} was already revoked at {token.revoked_at:%Y-%m-%d %H:%M} UTC.")
            return
        token = service_token_revoke(actor=Actor.system("manage.py revoke_service_token"), token_id=token.pk)
        self.stdout.write(f"Revoked service token {name!r}.")
