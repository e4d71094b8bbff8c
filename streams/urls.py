from django.urls import path

from streams import views

app_name = "streams"
urlpatterns = [
    path("recordings/<int:pk>/<str:track>.wav", views.recording, name="recording"),
]
