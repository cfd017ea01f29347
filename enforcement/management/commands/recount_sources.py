"""Recompute every violation's stored outcome and every source's tally from the cases' actions (a repair:
idempotent, safe while the console runs)."""

from django.core.management.base import BaseCommand

from enforcement.services.detectors import tallies_rebuild


class Command(BaseCommand):
    help = "Recount each reporting source's reports by outcome (actioned, dismissed, overturned) from history."

    def handle(self, *args, **options):
        for source, row in sorted(tallies_rebuild().items()):
            self.stdout.write(f"{source}: " + ", ".join(f"{field} {n}" for field, n in row.items()))
