from django import forms

from integrations import delivery
from integrations.models import ApiKey, WebhookEndpoint
from tenancy import weburls


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who or what uses it, e.g. “CRM sync”.")
    scopes = forms.MultipleChoiceField(choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple,
                                       initial=[ApiKey.Scope.READ])


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=WebhookEndpoint.Event.choices, widget=forms.CheckboxSelectMultiple,
                                       initial=WebhookEndpoint.Event.values)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events"]
        labels = {"url": "URL"}
        help_texts = {"url": "Your CRM's https:// address; we post each event to it as JSON, signed."}

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:  # what can be told without DNS; the address it resolves to is checked at each delivery
            delivery.check_url(url, resolve=False)
        except weburls.Refused as exc:
            raise forms.ValidationError(str(exc)) from None
        return url
