from django.urls import path

from transfers import views

app_name = "transfers"
urlpatterns = [
    path("", views.agent_list, name="agents"),
    path("new/", views.agent_form, name="agent_create"),
    path("<int:pk>/edit/", views.agent_form, name="agent_edit"),
    path("<int:pk>/delete/", views.agent_delete, name="agent_delete"),
    path("groups/new/", views.group_form, name="group_create"),
    path("groups/<int:pk>/edit/", views.group_form, name="group_edit"),
    path("groups/<int:pk>/delete/", views.group_delete, name="group_delete"),
]
