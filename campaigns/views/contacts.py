from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST

from campaigns import donotcall, export, imports
from campaigns.forms import ConfirmImportForm, DoNotCallForm, UploadForm
from campaigns.models import Campaign, DoNotCall
from tenancy.access import role_required, scoped
from tenancy.models import Role

DNC_SHOWN = 200


@role_required(Role.OPERATOR)
def upload(request, pk):
    """Read the file once and send the operator to its preview (as JSON to the page's script)."""
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    form = UploadForm(request.POST or None, request.FILES or None)
    if form.is_valid():
        try:
            key = imports.receive(campaign, form.cleaned_data["file"].read(), region=form.cleaned_data["region"])
        except imports.ImportRefused as exc:
            form.add_error("file", str(exc))
        else:
            url = reverse("campaigns:preview", args=[campaign.pk, key])
            if request.headers.get("Accept") == "application/json":
                return JsonResponse({"preview": url})
            return redirect(url)
    return render(request, "campaigns/upload.html", {"campaign": campaign, "form": form})


@role_required(Role.OPERATOR)
def preview(request, pk, key):
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    try:
        report = imports.check(campaign, imports.unstash(campaign, key))
    except imports.ImportRefused as exc:
        messages.error(request, str(exc))
        return redirect("campaigns:upload", campaign.pk)
    return render(request, "campaigns/preview.html", {
        "campaign": campaign, "report": report, "confirm": ConfirmImportForm(initial={"key": key}),
        "sample": report.valid[: imports.PREVIEW_ROWS], "errors": report.errors[: imports.ERRORS_SHOWN],
    })


@role_required(Role.OPERATOR)
def preview_errors(request, pk, key):
    """Every row the import would reject, as CSV, for files with more than the preview shows."""
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    try:
        report = imports.check(campaign, imports.unstash(campaign, key))
    except imports.ImportRefused as exc:
        raise Http404(str(exc)) from None
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = content_disposition_header(True, f"rejected-rows-{campaign.pk}.csv")
    export.write_rows(response, [("line", "phone", "problem"), *((e.line, e.phone, e.reason) for e in report.errors)])
    return response


@require_POST
@role_required(Role.OPERATOR)
def confirm_import(request, pk):
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    form = ConfirmImportForm(request.POST)
    try:
        if not form.is_valid():
            raise imports.ImportRefused(imports.EXPIRED)
        key = form.cleaned_data["key"]
        report = imports.import_contacts(campaign, imports.unstash(campaign, key))
    except imports.ImportRefused as exc:
        messages.error(request, str(exc))
        return redirect("campaigns:upload", campaign.pk)
    imports.discard(campaign, key)
    messages.success(request, f"Imported {report.imported} contacts; {len(report.errors)} rows were not imported.")
    return redirect(campaign)


@role_required(Role.VIEWER)
def dnc_list(request):
    entries = scoped(request, DoNotCall)
    if query := request.GET.get("q", "").strip():
        entries = entries.filter(phone__contains=query)
    return render(request, "campaigns/dnc.html", {
        "entries": entries[:DNC_SHOWN], "query": query, "form": DoNotCallForm(), "upload": UploadForm(),
        "total": scoped(request, DoNotCall).count(),
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


@require_POST
@role_required(Role.OPERATOR)
def dnc_import(request):
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("campaigns:dnc")
    try:
        text = imports.decode(form.cleaned_data["file"].read())
        report = donotcall.import_numbers(request.workspace, text, region=form.cleaned_data["region"])
    except imports.ImportRefused as exc:
        messages.error(request, str(exc))
        return redirect("campaigns:dnc")
    messages.success(request, f"Added {report.added} numbers; {report.already} were already listed.")
    return render(request, "campaigns/dnc_report.html", {"report": report}) if report.errors else redirect(
        "campaigns:dnc"
    )
