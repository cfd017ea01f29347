from django.apps import AppConfig


class EnforcementConfig(AppConfig):
    name = "enforcement"
    verbose_name = "Enforcement"

    def ready(self):
        # Register the tasks in every process, not only the worker: services send them by name (lib.queue);
        # and the receivers that make sign-in, sign-out, failures and lockouts audit events.
        from enforcement import signin, tasks  # noqa: F401
