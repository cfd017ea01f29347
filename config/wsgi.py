import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# What start-up made (settings, apps, models, URL patterns) lives as long as the process: frozen out of the
# cyclic collector's sight, so the full collections that a large request (a batch of 500 reports) sets off
# do not walk all of it each time.
gc.freeze()
