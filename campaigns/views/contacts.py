from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from campaigns import dncfiles, donotcall, imports, tasks, uploads
from campaigns.forms import DoNotCallForm, RegistryFileForm, UploadForm
from campaigns.models import Campaign, ContactUpload, DoNotCall, DoNotCallImport
from tenancy.access import role_required, scoped
from tenancy.models import Role

DNC_SHOWN = 200
FILES_SHOWN = 10


def wants_json(request) -> bool:
    return request.headers.get("Accept") == "application/json"


@role_required(Role.OPERATOR)
def upload(request, pk):
    """Receive a contact file and send the operator to its page, where a task's progress shows."""
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    form = UploadForm(request.POST or None, request.FILES or None, refused=uploads.refusal(request))
    if form.is_valid():
        try:
            received = imports.receive(campaign, form.cleaned_data["file"], region=form.cleaned_data["region"],
                                       user=request.user)
        except imports.ImportRefused as exc:
            form.add_error("file", str(exc))
        else:
            tasks.check_upload.delay_on_commit(received.pk)
            if wants_json(request):
                return JsonResponse({"next": received.get_absolute_url()})
            return redirect(received)
    if form.errors and wants_json(request):
        # The page's script shows this beside the form rather than sending the file a second time.
        return JsonResponse({"error": " ".join(e for errors in form.errors.values() for e in errors)}, status=400)
    return render(request, "campaigns/upload.html", {
        "campaign": campaign, "form": form, "max_bytes": settings.UPLOAD_MAX_BYTES, "limit": uploads.limit_text(),
    })


def scoped_upload(request, pk, upload) -> ContactUpload:
    return get_object_or_404(scoped(request, ContactUpload).select_related("campaign"), pk=upload, campaign_id=pk)


@role_required(Role.OPERATOR)
def upload_status(request, pk, upload):
    """An upload's page: its check's progress, then its preview, then its import's progress and outcome."""
    upload = scoped_upload(request, pk, upload)
    return render(request, "campaigns/preview.html", {
        "campaign": upload.campaign, "upload": upload, "report": imports.Report(**upload.report),
    })


@role_required(Role.OPERATOR)
def upload_progress(request, pk, upload):
    """Polled by the upload's page while a task works on it."""
    upload = scoped_upload(request, pk, upload)
    return JsonResponse({"state": upload.state, "progress": upload.progress})


@role_required(Role.OPERATOR)
def upload_rejected(request, pk, upload):
    """Every row the import would reject (or did), as CSV, for files with more than the page shows."""
    upload = scoped_upload(request, pk, upload)
    rejected = imports.rejected_rows(upload)
    if rejected is None:
        raise Http404("This upload has no list of rejected rows.")
    return FileResponse(rejected, as_attachment=True, filename=f"rejected-rows-{upload.campaign_id}.csv",
                        content_type="text/csv")


@require_POST
@role_required(Role.OPERATOR)
def confirm_import(request, pk, upload):
    upload = scoped_upload(request, pk, upload)
    if imports.confirm(upload):
        tasks.import_upload.delay_on_commit(upload.pk)
    else:
        messages.error(request, "This upload is not waiting for a confirmation: it was imported already, or "
                                "is still being checked.")
    return redirect(upload)


@role_required(Role.VIEWER)
def dnc_list(request):
    entries = scoped(request, DoNotCall)
    if query := request.GET.get("q", "").strip():
        entries = entries.filter(phone__contains=query)
    if (source := request.GET.get("source", "")) in DoNotCall.Source.values:
        entries = entries.filter(source=source)
    return render(request, "campaigns/dnc.html", {
        "entries": entries[:DNC_SHOWN], "query": query, "source": source, "sources": DoNotCall.Source.choices,
        "form": DoNotCallForm(), "upload": UploadForm(), "registry": RegistryFileForm(),
        "total": scoped(request, DoNotCall).count(), "files": scoped(request, DoNotCallImport)[:FILES_SHOWN],
        "scrubbed": donotcall.latest_scrub_date(request.workspace.pk),
    })


@require_POST
@role_required(Role.OPERATOR)
def dnc_add(request):
    form = DoNotCallForm(request.POST)
    if form.is_valid():
        try:
            entry, created = donotcall.add_number(
                request.workspace, form.cleaned_data["phone"], region=form.cleaned_data["region"],
                reason=form.cleaned_data["reason"],
            )
        except donotcall.NotAPhoneNumber as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{entry.phone} {'added' if created else 'was already on the list'}.")
    else:
        messages.error(request, "Enter a phone number.")
    return redirect("campaigns:dnc")


@require_POST
@role_required(Role.OPERATOR)
def dnc_remove(request, pk):
    entry = get_object_or_404(scoped(request, DoNotCall), pk=pk)
    entry.delete()
    messages.success(request, f"{entry.phone} removed from the do-not-call list.")
    return redirect("campaigns:dnc")


def receive_dnc_file(request, form, *, source: str):
    """A do-not-call file posted with `form`: kept, its import enqueued, and its page shown."""
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("campaigns:dnc")
    try:
        job = dncfiles.receive(request.workspace, form.cleaned_data["file"], source=source, user=request.user,
                               region=form.cleaned_data["region"], file_date=form.cleaned_data.get("file_date"))
    except imports.ImportRefused as exc:
        messages.error(request, str(exc))
        return redirect("campaigns:dnc")
    tasks.import_dnc_file.delay_on_commit(job.pk)
    return redirect("campaigns:dnc_file", job.pk)


@require_POST
@role_required(Role.OPERATOR)
def dnc_import(request):
    form = UploadForm(request.POST, request.FILES, refused=uploads.refusal(request))
    return receive_dnc_file(request, form, source=DoNotCall.Source.UPLOAD)


@require_POST
@role_required(Role.OPERATOR)
def dnc_registry(request):
    form = RegistryFileForm(request.POST, request.FILES, refused=uploads.refusal(request))
    return receive_dnc_file(request, form, source=DoNotCall.Source.REGISTRY)


@role_required(Role.VIEWER)
def dnc_file(request, pk):
    """A do-not-call file's import: its progress (dialling is held meanwhile), then what it did."""
    job = get_object_or_404(scoped(request, DoNotCallImport), pk=pk)
    return render(request, "campaigns/dnc_report.html", {"job": job})


@role_required(Role.VIEWER)
def dnc_file_progress(request, pk):
    job = get_object_or_404(scoped(request, DoNotCallImport), pk=pk)
    return JsonResponse({"state": job.state, "progress": job.progress})
