from django.apps import AppConfig


class EnforcementConfig(AppConfig):
    name = "enforcement"
    verbose_name = "Enforcement"

    def ready(self):
        # Register the tasks in every process, not only the worker: services send them by name (lib.queue).
        from enforcement import tasks  # noqa: F401
