from datetime import date

from django.core.management.base import BaseCommand, CommandError

from enforcement import services


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r}: a day such as 2026-11-01.") from None


class Command(BaseCommand):
    help = ("Roll up the metrics of some days again (beat does the recent ones): by default from the day before the "
            "last one rolled up, or the first day with data, to today.")

    def add_arguments(self, parser):
        parser.add_argument("--since", type=_day, help="First day (UTC), e.g. 2026-01-01.")
        parser.add_argument("--until", type=_day, help="Last day (UTC), inclusive; default today.")

    def handle(self, *args, since=None, until=None, **options):
        if since and until and since > until:
            raise CommandError("--since must not be after --until.")
        days = services.metrics_rollup(since=since, until=until)
        self.stdout.write(f"rolled up {len(days)} day(s)" + (f": {days[0]} to {days[-1]}" if days else ""))
