import json
import os
import tempfile
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from enforcement.integrations.github import parse_public_keys

GITHUB_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning"


class Command(BaseCommand):
    help = (
        "Save GitHub's secret scanning public keys to the file named by GITHUB_SECRET_SCANNING_KEYS "
        "(or --output). Run it from cron or by hand; deliveries never fetch anything."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", help="Where to write the keys (default: GITHUB_SECRET_SCANNING_KEYS).")
        parser.add_argument("--url", default=GITHUB_KEYS_URL)
        parser.add_argument("--github-token", default=os.environ.get("GITHUB_TOKEN"),
                            help="Optional, for a higher rate limit (default: $GITHUB_TOKEN).")

    def handle(self, *args, output, url, github_token, **options):
        output = output or settings.GITHUB_SECRET_SCANNING_KEYS
        if not output:
            raise CommandError("Name a file with --output or set GITHUB_SECRET_SCANNING_KEYS.")
        request = urllib.request.Request(url, headers={"Accept": "application/vnd.github+json"})
        if github_token:
            request.add_header("Authorization", f"Bearer {github_token}")
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                document = json.load(response)
            keys = parse_public_keys(document)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Could not get usable keys from {url}: {exc}") from exc
        # Write beside the target and rename, so a delivery never reads half a file.
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
            json.dump(document, handle, indent=2)
        os.replace(handle.name, path)
        self.stdout.write(f"{len(keys)} key(s) written to {path}.")
