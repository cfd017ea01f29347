from django.core.management.base import BaseCommand

from enforcement import services


class Command(BaseCommand):
    help = "Recompute every key's effective status and limits from the actions in force (the database is the truth)."

    def handle(self, *args, **options):
        accounts, changed = services.all_keys_recompute()
        self.stdout.write(f"{accounts} account(s) checked, {changed} key(s) corrected.")
