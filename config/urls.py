from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from integrations.api import api

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("workspaces/", include("tenancy.urls")),
    path("agents/", include("transfers.urls")),
    path("admin/", admin.site.urls),
    path("hooks/", include("callbacks.urls")),
    path("streams/", include("streams.urls")),
    path("api/v1/", api.urls),
    path("integrations/", include("integrations.urls")),
    path("", include("campaigns.urls")),
]
