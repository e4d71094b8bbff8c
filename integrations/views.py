from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from integrations import keys
from integrations.forms import ApiKeyForm
from integrations.models import ApiKey
from tenancy.access import role_required, scoped
from tenancy.models import Role


@role_required(Role.ADMIN)
def api_keys(request):
    """The workspace's API keys; a new key is shown on this response only, never stored in plain."""
    form = ApiKeyForm(request.POST or None)
    plain = None
    if form.is_valid():
        key, plain = keys.create_key(request.workspace, name=form.cleaned_data["name"],
                                     scopes=form.cleaned_data["scopes"], by=request.user)
        form = ApiKeyForm()
    return render(request, "integrations/keys.html", {
        "keys": scoped(request, ApiKey).select_related("created_by"), "form": form, "plain": plain,
    })


@require_POST
@role_required(Role.ADMIN)
def revoke_api_key(request, pk):
    key = get_object_or_404(scoped(request, ApiKey), pk=pk)
    if keys.revoke_key(key):
        messages.success(request, f"API key {key.name} revoked: requests with it are refused from now on.")
    return redirect("integrations:api_keys")
