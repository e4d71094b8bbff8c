"""A campaign's A/B test: its variants (each a greeting and a bot) and the figures of their calls."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from campaigns import experiments
from campaigns.forms import VariantForm
from campaigns.models import Campaign, Variant
from tenancy.access import role_required, scoped
from tenancy.models import Role


@role_required(Role.VIEWER)
def experiment(request, pk):
    """The campaign page's A/B figures and time to first audio, fetched by its script apart from the page."""
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    return render(request, "campaigns/_experiment.html",
                  {"campaign": campaign, "experiment": experiments.figures(campaign)})


@role_required(Role.OPERATOR)
def variant_create(request, pk):
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    return _variant_form(request, campaign, Variant())


@role_required(Role.OPERATOR)
def variant_edit(request, pk, variant):
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    return _variant_form(request, campaign, get_object_or_404(scoped(request, Variant), campaign=campaign, pk=variant))


def _variant_form(request, campaign: Campaign, variant: Variant):
    form = VariantForm(request.POST or None, instance=variant, campaign=campaign)
    if form.is_valid():
        form.save()
        messages.success(request, f"Variant {form.instance.name} saved.")
        return redirect(f"{campaign.get_absolute_url()}#experiment")
    return render(request, "campaigns/variant_form.html", {"form": form, "campaign": campaign, "variant": variant})


@require_POST
@role_required(Role.OPERATOR)
def variant_delete(request, pk, variant):
    campaign = get_object_or_404(scoped(request, Campaign), pk=pk)
    variant = get_object_or_404(scoped(request, Variant), campaign=campaign, pk=variant)
    if experiments.delete_variant(variant):
        messages.success(request, f"Variant {variant.name} deleted.")
    else:
        messages.error(request, f"Variant {variant.name} has calls: it stays, so that their figures do. "
                                f"Set its weight to 1 to give it few new contacts.")
    return redirect(f"{campaign.get_absolute_url()}#experiment")
