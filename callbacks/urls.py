"""Exotel's webhooks, at per-workspace secret URLs (campaigns/links.py builds them)."""

from django.urls import path

from callbacks import views

app_name = "callbacks"
urlpatterns = [
    path("<str:token>/status", views.status, name="status"),
    path("<str:token>/passthru", views.passthru, name="passthru"),
    path("<str:token>/legs", views.leg_event, name="leg_event"),
    path("<str:token>/stream-url", views.stream_url, name="stream_url"),
]
