from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from integrations import delivery, keys, tasks
from integrations.forms import ApiKeyForm, WebhookEndpointForm
from integrations.models import ApiKey, Delivery, WebhookEndpoint
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


HISTORY = 50


@role_required(Role.ADMIN)
def webhooks(request):
    """The workspace's webhook endpoints, and a form to add one (its secret is made here)."""
    form = WebhookEndpointForm(request.POST or None)
    if form.is_valid():
        endpoint = form.save(commit=False)
        endpoint.workspace, endpoint.secret = request.workspace, delivery.new_secret()
        endpoint.save()
        messages.success(request, "Endpoint added. Check its signatures with the secret below.")
        return redirect("integrations:webhook", endpoint.pk)
    return render(request, "integrations/webhooks.html", {
        "endpoints": scoped(request, WebhookEndpoint), "form": form,
    })


@role_required(Role.ADMIN)
def webhook(request, pk):
    """An endpoint: its secret, and its deliveries with every attempt, newest first."""
    endpoint = get_object_or_404(scoped(request, WebhookEndpoint), pk=pk)
    deliveries = (scoped(request, Delivery).filter(endpoint=endpoint).select_related("event")
                  .prefetch_related("tries").order_by("-created_at")[:HISTORY])
    return render(request, "integrations/webhook.html", {"endpoint": endpoint, "deliveries": deliveries})


@require_POST
@role_required(Role.ADMIN)
def webhook_toggle(request, pk):
    endpoint = get_object_or_404(scoped(request, WebhookEndpoint), pk=pk)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=not endpoint.active)
    messages.success(request, f"Endpoint {'paused: no new events are sent to it' if endpoint.active else 'active'}.")
    return redirect("integrations:webhook", endpoint.pk)


@require_POST
@role_required(Role.ADMIN)
def webhook_delete(request, pk):
    endpoint = get_object_or_404(scoped(request, WebhookEndpoint), pk=pk)
    endpoint.delete()
    messages.success(request, f"Endpoint {endpoint.url} deleted with its history.")
    return redirect("integrations:webhooks")


@require_POST
@role_required(Role.ADMIN)
def webhook_replay(request, pk, delivery_id):
    sent = get_object_or_404(scoped(request, Delivery), pk=delivery_id, endpoint_id=pk)
    if delivery.replay(sent):
        tasks.deliver_webhook.delay_on_commit(sent.pk)
        messages.success(request, "Sent again, with the same Webhook-Id.")
    else:
        messages.error(request, "This delivery is being sent right now.")
    return redirect("integrations:webhook", pk)
