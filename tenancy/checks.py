from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_public_base_url(app_configs, **kwargs):
    if settings.PUBLIC_BASE_URL.startswith("https://"):
        return []
    return [
        Warning(
            "PUBLIC_BASE_URL is not https: Exotel needs wss:// stream URLs with a valid certificate.",
            id="tenancy.W002",
        )
    ]
