from django.urls import path

from tenancy import views

app_name = "tenancy"
urlpatterns = [
    path("switch/", views.switch, name="switch"),
    path("accounts/", views.account_list, name="accounts"),
    path("accounts/new/", views.account_form, name="account_create"),
    path("accounts/<int:pk>/edit/", views.account_form, name="account_edit"),
    path("accounts/<int:pk>/test/", views.account_test, name="account_test"),
    path("exophones/new/", views.exophone_form, name="exophone_create"),
    path("exophones/<int:pk>/edit/", views.exophone_form, name="exophone_edit"),
    path("exophones/<int:pk>/delete/", views.exophone_delete, name="exophone_delete"),
    path("members/", views.member_list, name="members"),
    path("members/<int:pk>/role/", views.member_role, name="member_role"),
    path("members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("invitations/<int:pk>/withdraw/", views.invitation_withdraw, name="invitation_withdraw"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("endpoints/", views.endpoints, name="endpoints"),
    path("calling-rules/", views.calling_rules, name="calling_rules"),
    path("endpoints/rotate/", views.rotate_webhook_token, name="rotate_webhook_token"),
]
