"""Campaigns: create one, add contacts from CSV, start, pause, resume, cancel, read.

Creating validates with the dashboard's CampaignForm; contacts go through the dashboard's import
(campaigns.imports: checked by a task, reported by line, imported once confirmed); lifecycle changes
call campaigns.lifecycle. Nothing here decides what the dashboard would not.
"""

import zoneinfo

from django.forms.models import model_to_dict
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from ninja import File, Form, Router, Status
from ninja.files import UploadedFile

from campaigns import imports, lifecycle, tasks, uploads
from campaigns.forms import DEFAULT_REGION, REGIONS, CampaignForm
from campaigns.models import Campaign, ContactUpload
from integrations.api import WRITE
from integrations.schemas import CampaignIn, CampaignOut, CampaignPage, Problem, UploadOut
from tenancy.access import scoped

router = Router(tags=["campaigns"])
PAGE_SIZE = 50
REGION_CODES = {code for code, _ in REGIONS}


def campaigns_of(request):
    return scoped(request, Campaign).prefetch_related("exophones")


@router.get("", response=CampaignPage, summary="List campaigns, newest first")
def list_campaigns(request, state: Campaign.State | None = None, after: int | None = None):
    """`after`: the `next` of the previous page."""
    campaigns = campaigns_of(request).order_by("-pk")
    if state:
        campaigns = campaigns.filter(state=state)
    if after:
        campaigns = campaigns.filter(pk__lt=after)
    rows = list(campaigns[: PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    return {"items": rows[:PAGE_SIZE], "next": str(rows[PAGE_SIZE - 1].pk) if more else None}


@router.post("", auth=WRITE, response={201: CampaignOut, 422: Problem}, summary="Create a campaign (a draft)")
def create_campaign(request, payload: CampaignIn):
    blank = Campaign(workspace=request.workspace, created_by=request.api_key.created_by,
                     time_zone=request.workspace.time_zone)
    given = payload.dict(exclude_unset=True)
    zone = given.get("time_zone") or blank.time_zone
    for name in ("starts_at", "ends_at"):  # the form reads them as wall-clock times in the campaign's zone
        if given.get(name) and given[name].tzinfo and zone in zoneinfo.available_timezones():
            given[name] = given[name].astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)
    form = CampaignForm({**model_to_dict(blank, fields=CampaignForm.Meta.fields), **given}, instance=blank,
                        workspace=request.workspace)
    if not form.is_valid():
        return Status(422, {"detail": {field: list(errors) for field, errors in form.errors.items()}})
    return Status(201, campaigns_of(request).get(pk=form.save().pk))


@router.get("/{int:campaign_id}", response=CampaignOut, summary="Read a campaign and its counters")
def get_campaign(request, campaign_id: int):
    return get_object_or_404(campaigns_of(request), pk=campaign_id)


@router.post("/{int:campaign_id}/uploads", auth=WRITE, response={202: UploadOut, 422: Problem},
             summary="Upload a CSV of contacts")
def upload_contacts(request, campaign_id: int, file: File[UploadedFile] = None,
                    region: Form[str] = DEFAULT_REGION):
    """Multipart, as the dashboard's upload: `file` (first line: column names, one of them phone) and `region`
    (the country of numbers written without +). Every row is checked by a task: poll the upload until it is
    `ready`, read its report (rejected rows by line), then confirm it to import the valid rows."""
    campaign = get_object_or_404(scoped(request, Campaign), pk=campaign_id)
    if refused := uploads.refusal(request) or (not file and "A CSV file is required in the field file."):
        return Status(422, {"detail": {"file": [refused]}})
    if region not in REGION_CODES:
        return Status(422, {"detail": {"region": [f"{region!r} is not a country code such as IN."]}})
    try:
        upload = imports.receive(campaign, file, region=region, user=request.api_key.created_by)
    except imports.ImportRefused as exc:
        return Status(422, {"detail": {"file": [str(exc)]}})
    tasks.check_upload.delay_on_commit(upload.pk)
    return Status(202, upload)


def upload_of(request, campaign_id: int, upload_id: int) -> ContactUpload:
    return get_object_or_404(scoped(request, ContactUpload), pk=upload_id, campaign_id=campaign_id)


@router.get("/{int:campaign_id}/uploads/{int:upload_id}", response=UploadOut, summary="Read an upload")
def get_upload(request, campaign_id: int, upload_id: int):
    return upload_of(request, campaign_id, upload_id)


@router.post("/{int:campaign_id}/uploads/{int:upload_id}/confirm", auth=WRITE,
             response={202: UploadOut, 409: Problem}, summary="Import a checked upload's valid rows")
def confirm_upload(request, campaign_id: int, upload_id: int):
    upload = upload_of(request, campaign_id, upload_id)
    if not imports.confirm(upload):
        return Status(409, {"detail": f"This upload is {upload.state}, not waiting for a confirmation."})
    tasks.import_upload.delay_on_commit(upload.pk)
    upload.refresh_from_db()
    return Status(202, upload)


@router.get("/{int:campaign_id}/uploads/{int:upload_id}/rejected", summary="Every rejected row, as CSV",
            openapi_extra={"responses": {200: {"content": {"text/csv": {}}}}})
def rejected_rows(request, campaign_id: int, upload_id: int):
    upload = upload_of(request, campaign_id, upload_id)
    rejected = imports.rejected_rows(upload)
    if rejected is None:
        raise Http404("This upload has no list of rejected rows.")
    return FileResponse(rejected, as_attachment=True, filename=f"rejected-rows-{upload.campaign_id}.csv",
                        content_type="text/csv")


def lifecycle_view(action: str):
    def change_campaign(request, campaign_id: int):
        campaign = get_object_or_404(campaigns_of(request), pk=campaign_id)
        getattr(lifecycle, f"{action}_campaign")(campaign, by=request.api_key.created_by)
        return campaigns_of(request).get(pk=campaign.pk)

    return change_campaign


for action in lifecycle.ACTIONS:  # start, pause, resume, cancel: each its own route, as on the dashboard
    router.post(f"/{{int:campaign_id}}/{action}", auth=WRITE, response={200: CampaignOut, 409: Problem},
                operation_id=f"{action}_campaign", summary=f"{action.capitalize()} a campaign",
                description="409 with the reason when the campaign's state does not allow it.")(lifecycle_view(action))
