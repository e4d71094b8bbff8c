from django.urls import path

from campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("campaigns/", views.campaign_list, name="list"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="detail"),
    path("calls/<int:pk>/", views.call_detail, name="call"),
]
