"""Calls: a page at a time, newest first, filtered as the dashboard's calls page filters them."""

import datetime

from django.shortcuts import get_object_or_404
from ninja import Router, Status

from campaigns import queries
from campaigns.forms import CallFilterForm
from campaigns.models import Call
from integrations import schemas
from tenancy.access import scoped

router = Router(tags=["calls"])


@router.get("", response={200: schemas.CallPage, 422: schemas.Problem}, summary="List calls, newest first")
def list_calls(request, campaign: int | None = None, state: Call.State | None = None, disposition: str = "",
               since: datetime.date | None = None, until: datetime.date | None = None, phone: str = "",
               after: str = ""):
    """Dates are days in the workspace's time zone; `phone` matches a part of the number; `after` is the
    `next` of the previous page."""
    filters = {"campaign": campaign, "state": state, "disposition": disposition, "since": since, "until": until,
               "phone": phone}
    form = CallFilterForm({k: v for k, v in filters.items() if v not in (None, "")}, workspace=request.workspace)
    if not form.is_valid():
        return Status(422, {"detail": {field: list(errors) for field, errors in form.errors.items()}})
    calls = queries.filter_calls(scoped(request, Call).select_related("exophone", "variant"), form.cleaned_data,
                                 tz=request.workspace.time_zone)
    page = queries.call_page(calls, after)
    return Status(200, {"items": page.rows, "next": page.next_cursor})


@router.get("/{int:call_id}", response=schemas.CallOut, summary="Read a call")
def get_call(request, call_id: int):
    return get_object_or_404(scoped(request, Call).select_related("exophone", "variant"), pk=call_id)
