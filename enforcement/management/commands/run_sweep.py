from django.core.management.base import BaseCommand

from enforcement import services


class Command(BaseCommand):
    help = "Run the periodic sweep once: re-enqueue lost work, expire and escalate what is due."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be done.")

    def handle(self, *args, dry_run=False, **options):
        report = services.sweep(dry_run=dry_run)
        if report.skipped:
            self.stdout.write("another sweep is running; nothing done")
            return
        prefix = "would " if dry_run else ""
        self.stdout.write(f"{prefix}re-enqueue actions: {report.requeued_actions}")
        self.stdout.write(f"{prefix}expire actions: {report.expired_actions}")
        self.stdout.write(f"{prefix}escalate warnings: {report.escalated_actions}")
        self.stdout.write(f"{prefix}re-enqueue emails: {report.requeued_notifications}")
        self.stdout.write(f"detectors given act-first back: {report.restored_sources}")
