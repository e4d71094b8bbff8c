from django.urls import path

from streams import views

app_name = "streams"
urlpatterns = [
    path("recordings/<int:pk>/<str:track>.wav", views.recording, name="recording"),
    path("prompts/", views.prompt_list, name="prompts"),
    path("prompts/upload/", views.prompt_upload, name="prompt_upload"),
    path("prompts/speak/", views.prompt_speak, name="prompt_speak"),
    path("prompts/voices/add/", views.voice_add, name="voice_add"),
    path("prompts/voices/<int:pk>/delete/", views.voice_delete, name="voice_delete"),
    path("prompts/<int:pk>/audio.wav", views.prompt_audio, name="prompt_audio"),
    path("prompts/<int:pk>/delete/", views.prompt_delete, name="prompt_delete"),
]
