from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Customer accounts and API keys"

    def ready(self):
        # Register the tasks in every process, not only the worker: they are sent by name (lib.queue).
        from accounts import tasks  # noqa: F401
