"""The product's URLs plus bench/webhooks.py's baseline: a view that stores the raw body in one INSERT."""

from django.urls import include, path

from bench.webhooks import store_raw

urlpatterns = [
    path("bench/raw/<int:workspace_id>", store_raw),
    path("", include("config.urls")),
]
