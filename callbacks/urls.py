"""Exotel's webhooks, at per-workspace secret URLs (campaigns/links.py builds them).

Tokens are URL-safe (`tenancy.models.new_token`), so `slug` refuses anything else (a NUL, a slash)
before it reaches a query.
"""

from django.urls import path

from callbacks import views

app_name = "callbacks"
urlpatterns = [
    path("<slug:token>/status", views.status, name="status"),
    path("<slug:token>/passthru", views.passthru, name="passthru"),
    path("<slug:token>/legs", views.leg_event, name="leg_event"),
    path("<slug:token>/stream-url", views.stream_url, name="stream_url"),
]
