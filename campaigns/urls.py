from django.urls import path

from campaigns import lifecycle
from campaigns.views import calls, campaigns, contacts, variants, wallboard

app_name = "campaigns"
urlpatterns = [
    path("", campaigns.overview, name="overview"),
    path("wallboard/", wallboard.wallboard_page, name="wallboard"),
    path("wallboard/board/", wallboard.wallboard_board, name="wallboard_board"),
    path("campaigns/", campaigns.campaign_list, name="list"),
    path("campaigns/new/", campaigns.campaign_create, name="create"),
    path("campaigns/script-preview/", campaigns.script_preview, name="script_preview"),
    path("campaigns/<int:pk>/", campaigns.campaign_detail, name="detail"),
    path("campaigns/<int:pk>/edit/", campaigns.campaign_edit, name="edit"),
    path("campaigns/<int:pk>/clone/", campaigns.campaign_clone, name="clone"),
    path("campaigns/<int:pk>/recall/", campaigns.campaign_recall, name="recall"),
    path("campaigns/relay-test/", campaigns.relay_test, name="relay_test"),
    path("campaigns/<int:pk>/charts/", campaigns.campaign_charts, name="charts"),
    path("campaigns/<int:pk>/counters.json", campaigns.campaign_counters, name="counters"),
    path("campaigns/<int:pk>/experiment/", variants.experiment, name="experiment"),
    path("campaigns/<int:pk>/variants/new/", variants.variant_create, name="variant_create"),
    path("campaigns/<int:pk>/variants/<int:variant>/edit/", variants.variant_edit, name="variant_edit"),
    path("campaigns/<int:pk>/variants/<int:variant>/delete/", variants.variant_delete, name="variant_delete"),
    path("campaigns/<int:pk>/calls.csv", campaigns.campaign_export, name="export"),
    path("campaigns/<int:pk>/held.csv", campaigns.campaign_held, name="held"),
    path("campaigns/<int:pk>/test-call/", campaigns.campaign_test_call, name="test_call"),
    path("compliance.csv", campaigns.compliance_export, name="compliance"),
    *[
        path(f"campaigns/<int:pk>/{action}/", campaigns.campaign_action, {"action": action}, name=action)
        for action in lifecycle.ACTIONS
    ],
    path("campaigns/<int:pk>/contacts/upload/", contacts.upload, name="upload"),
    path("campaigns/<int:pk>/contacts/uploads/<int:upload>/", contacts.upload_status, name="upload_status"),
    path("campaigns/<int:pk>/contacts/uploads/<int:upload>/progress.json", contacts.upload_progress,
         name="upload_progress"),
    path("campaigns/<int:pk>/contacts/uploads/<int:upload>/rejected.csv", contacts.upload_rejected,
         name="rejected"),
    path("campaigns/<int:pk>/contacts/uploads/<int:upload>/import/", contacts.confirm_import, name="import"),
    path("calls/", calls.call_list, name="calls"),
    path("calls/<int:pk>/", calls.call_detail, name="call"),
    path("calls/<int:pk>/supervise/", calls.call_supervise, name="supervise"),
    path("do-not-call/", contacts.dnc_list, name="dnc"),
    path("do-not-call/add/", contacts.dnc_add, name="dnc_add"),
    path("do-not-call/import/", contacts.dnc_import, name="dnc_import"),
    path("do-not-call/registry/", contacts.dnc_registry, name="dnc_registry"),
    path("do-not-call/files/<int:pk>/", contacts.dnc_file, name="dnc_file"),
    path("do-not-call/files/<int:pk>/progress.json", contacts.dnc_file_progress, name="dnc_file_progress"),
    path("do-not-call/<int:pk>/remove/", contacts.dnc_remove, name="dnc_remove"),
]
