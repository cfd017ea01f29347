from django.core.management.base import BaseCommand, CommandError

from accounts import edge


class Command(BaseCommand):
    help = (
        "Rebuild the edge store from the database: publish every key's state and drop records of keys "
        "that no longer exist (after a Redis flush or failover, say)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true",
            help="Overwrite records whatever their version (after restoring the database from a backup).",
        )
        parser.add_argument(
            "--clear", action="store_true",
            help="Empty the store first, rate-limit buckets included, then publish everything.",
        )

    def handle(self, *args, force: bool, clear: bool, **options):
        store = edge.get_store()
        try:
            store.ping()
            if clear:
                store.clear()
            report = edge.rebuild(force=force)
        except edge.EdgeUnavailable as exc:
            raise CommandError(f"The edge store cannot be reached: {exc}") from exc
        self.stdout.write(
            f"{type(store).__name__}: {report.published} key state(s) published, "
            f"{report.unchanged} already current, {report.removed} stale record(s) removed."
        )
