"""`{{ url|web_url }}`: the URL if it is an http(s) address, else empty, for every href/src of a URL from outside."""

from django import template

from tenancy import weburls

register = template.Library()


@register.filter
def web_url(url: str) -> str:
    return url if url and weburls.has_scheme(url) else ""
