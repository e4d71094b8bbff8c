from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = "Workspaces"

    def ready(self):
        from tenancy import checks  # noqa: F401  (registers the deploy checks)
