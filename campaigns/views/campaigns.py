import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Sum
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST

from campaigns import (
    clones,
    costs,
    estimate,
    export,
    forecast,
    health,
    lifecycle,
    queries,
    scriptpreview,
    testcalls,
)
from campaigns.forms import CampaignForm, CloneForm, RecallForm, TestCallForm
from campaigns.models import Call, Campaign, InvalidTransition
from streams.bots import relay
from streams.models import Prompt
from tenancy.access import role_required, scoped
from tenancy.models import Role
from tenancy.templatetags.phones import grouped
from transfers import queries as transfer_queries


@role_required(Role.VIEWER)
def overview(request):
    context = queries.overview(request.workspace)
    context.update(health.warnings(context["running"], context["accounts"]))
    return render(request, "campaigns/overview.html", context)


@role_required(Role.VIEWER)
def campaign_list(request):
    campaigns = (scoped(request, Campaign).select_related("account").prefetch_related("exophones")
                 .annotate(cost=Sum("costs__amount")))
    return render(request, "campaigns/list.html", {"campaigns": campaigns,
                                                   "daily_costs": costs.daily_totals(request.workspace)})


@role_required(Role.OPERATOR)
def campaign_create(request):
    # A new campaign starts from the model's defaults, in the workspace's time zone.
    blank = Campaign(workspace=request.workspace, created_by=request.user, time_zone=request.workspace.time_zone)
    form = CampaignForm(request.POST or None, instance=blank, workspace=request.workspace)
    if form.is_valid():
        campaign = form.save()
        messages.success(request, f"Campaign {campaign.name} created. Next: upload its contacts.")
        return redirect("campaigns:upload", campaign.pk)
    return _form_page(request, form)


@role_required(Role.OPERATOR)
def campaign_edit(request, pk):
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    form = CampaignForm(request.POST or None, instance=campaign, workspace=request.workspace)
    if form.is_valid():
        # Only the form's own fields: the engine moves counters and state concurrently.
        form.save(commit=False).save(update_fields=[*form.row_fields, "updated_at"])
        form.save_m2m()
        messages.success(request, "Campaign saved.")
        return redirect(campaign)
    return _form_page(request, form, campaign)


def _form_page(request, form, campaign=None):
    # The script editor offers the workspace's prompts by name.
    prompt_names = list(scoped(request, Prompt).values_list("name", flat=True))
    return render(request, "campaigns/form.html", {"form": form, "campaign": campaign, "prompt_names": prompt_names})


@require_POST
@role_required(Role.OPERATOR)
def script_preview(request):
    """The campaign form's script preview (static/js/script-editor.js): the script as typed, walked."""
    try:
        body = json.loads(request.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JsonResponse({"errors": ["The request must be a JSON object."]}, status=400)
    try:
        walk = scriptpreview.preview_script(
            request.workspace, text=body.get("script", ""), variables=body.get("variables", {}),
            answers=body.get("answers", []), connect_mode=body.get("connect_mode", ""),
            transfer_group=body.get("transfer_group"))
    except ValidationError as exc:
        return JsonResponse({"errors": exc.messages}, status=400)
    return JsonResponse(walk)


@role_required(Role.OPERATOR)
def campaign_clone(request, pk):
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    form = CloneForm(request.POST or None, initial={"name": f"{campaign.name} (copy)"})
    if form.is_valid():
        copy = clones.clone_campaign(campaign, name=form.cleaned_data["name"], by=request.user)
        messages.success(request, f"Campaign {copy.name} created with the settings of {campaign.name}. "
                                  "Check them, then upload its contacts.")
        return redirect("campaigns:edit", copy.pk)
    return render(request, "campaigns/clone.html", {"form": form, "campaign": campaign})


@role_required(Role.OPERATOR)
def campaign_recall(request, pk):
    campaign = get_object_or_404(scoped(request, Campaign).select_related("workspace"), pk=pk)
    form = RecallForm(request.POST or None, campaign=campaign, outcomes=clones.OUTCOME_CHOICES)
    if form.is_valid():
        try:
            recall = clones.recall_campaign(campaign, by=request.user, **form.cleaned_data)
        except clones.NothingToRecall as exc:
            form.add_error(None, str(exc))
        else:
            left_out = f"; {recall.on_do_not_call} on the do-not-call list left out" if recall.on_do_not_call else ""
            messages.success(request, f"Campaign {recall.campaign.name} created in draft with "
                                      f"{recall.contacts} contact{'s' if recall.contacts != 1 else ''}{left_out}.")
            return redirect(recall.campaign)
    return render(request, "campaigns/clone.html", {"form": form, "campaign": campaign, "recall": True})


@require_POST
@role_required(Role.OPERATOR)
def relay_test(request):
    """The campaign form's "Test the connection": a WebSocket to the relay address typed, opened from here
    with the token typed, else the campaign's stored one."""
    token = request.POST.get("token", "").strip()
    if not token and request.POST.get("campaign", "").isdigit():
        stored = scoped(request, Campaign).filter(pk=request.POST["campaign"]).values_list("relay_token", flat=True)
        token = next(iter(stored), "")
    ok, message = relay.test_connection(request.POST.get("url", "").strip(), token)
    return JsonResponse({"ok": ok, "message": message})


@role_required(Role.VIEWER)
def campaign_detail(request, pk):
    campaign = get_object_or_404(scoped(request, Campaign).select_related("account", "workspace"), pk=pk)
    spend, now = costs.spend(campaign), timezone.now()
    return render(request, "campaigns/detail.html", {
        "campaign": campaign,
        "counters": queries.counters(campaign),
        "transfers": transfer_queries.figures(campaign),
        "outcomes": queries.outcomes(campaign),
        "live_calls": queries.live_calls(campaign),
        "retries": queries.retries(campaign),
        "finish": estimate.of(campaign, now=now),
        "events": campaign.events.select_related("by")[:10],
        "spend": spend,
        # Before it runs: what the dispatcher will do with its contacts under the calling rules.
        "forecast": forecast.forecast(campaign, now=now, spend=spend) if campaign.state in BEFORE_RUNNING else None,
        **health.warnings([campaign]),
    })


BEFORE_RUNNING = (Campaign.State.DRAFT, Campaign.State.SCHEDULED, Campaign.State.PAUSED)


@role_required(Role.OPERATOR)
def campaign_test_call(request, pk):
    """The campaign's bot on the operator's phone through Exotel; with the simulator, in the browser."""
    campaign = get_object_or_404(scoped(request, Campaign).select_related("account"), pk=pk)
    form = TestCallForm(request.POST or None)
    if form.is_valid():
        phone = form.cleaned_data["phone"]
        try:
            sid = testcalls.place_test_call(campaign, phone=phone)
        except testcalls.Refused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, f"Calling {grouped(phone)}: answer it to hear the campaign's bot (Exotel call {sid}).")
            return redirect("campaigns:test_call", campaign.pk)
    return render(request, "campaigns/test_call.html", {
        "campaign": campaign, "in_browser": campaign.account.is_simulator, "form": form})


@role_required(Role.VIEWER)
def campaign_charts(request, pk):
    """The detail page's charts and dispositions, fetched by its script apart from the page."""
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    return render(request, "campaigns/_charts.html", {"campaign": campaign, **queries.charts(campaign)})


@role_required(Role.VIEWER)
def campaign_counters(request, pk):
    campaign = get_object_or_404(scoped(request, Campaign).select_related("workspace"), pk=pk)
    return JsonResponse(queries.live_view(campaign, now=timezone.now()))


@require_POST
@role_required(Role.OPERATOR)
def campaign_action(request, pk, action):
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    try:
        getattr(lifecycle, f"{action}_campaign")(campaign, by=request.user)
    except InvalidTransition as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Campaign {campaign.get_state_display().lower()}.")
    return redirect(campaign)


@role_required(Role.VIEWER)
def campaign_export(request, pk):
    campaign = get_object_or_404(scoped(request, Campaign).select_related("workspace"), pk=pk)
    calls = scoped(request, Call).filter(campaign=campaign)
    layout = export.Layout.of(campaign)
    return _csv_response(request, export.rows(layout, calls), export.arows(layout, calls), export.filename(campaign))


def _csv_response(request, rows, arows, name: str) -> StreamingHttpResponse:
    # Under daphne the rows must come from an async iterator or Django buffers them all.
    response = StreamingHttpResponse(arows if isinstance(request, ASGIRequest) else rows, content_type="text/csv")
    response["Content-Disposition"] = content_disposition_header(True, name)
    return response


@role_required(Role.VIEWER)
def campaign_held(request, pk):
    """The contacts the forecast holds back, with their reasons."""
    campaign = get_object_or_404(scoped(request, Campaign).select_related("workspace"), pk=pk)
    response = HttpResponse(content_type="text/csv")
    export.write_rows(response, forecast.held_rows(campaign, now=timezone.now()))
    response["Content-Disposition"] = content_disposition_header(True, f"held-{campaign.pk}.csv")
    return response


@role_required(Role.VIEWER)
def compliance_export(request):
    """Per number, every attempt with its local time and the rule that allowed it, every hold and skip."""
    workspace_id = request.workspace.pk
    return _csv_response(request, export.compliance_rows(workspace_id), export.acompliance_rows(workspace_id),
                         f"compliance-{request.workspace.slug}-{timezone.now():%Y%m%d}.csv")
