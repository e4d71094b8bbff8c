import datetime

import phonenumbers
from django import forms
from django.conf import settings
from django.contrib.auth.password_validation import validate_password

from tenancy import weburls
from tenancy.crypto import masked
from tenancy.models import Exophone, ExotelAccount, Role, Workspace


class ExotelAccountForm(forms.ModelForm):
    """Secrets are write-only: never rendered back; left blank on edit, the stored one is kept."""

    api_key = forms.CharField(label="API key", widget=forms.PasswordInput(render_value=False))
    api_token = forms.CharField(label="API token", widget=forms.PasswordInput(render_value=False))

    class Meta:
        model = ExotelAccount
        fields = ["label", "account_sid", "api_key", "api_token", "region", "api_base_url", "number_form", "currency",
                  "rate_per_minute"]
        labels = {"account_sid": "Account SID", "api_base_url": "API base URL"}
        help_texts = {"api_base_url": "Blank: the region's. Set it to point at a proxy or the simulator."}

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.workspace = workspace
        if self.instance.pk:
            for name in ("api_key", "api_token"):
                field = self.fields[name]
                field.required = False
                field.help_text = f"Stored: {masked(getattr(self.instance, name))}. Leave blank to keep it."
                field.widget.attrs["autocomplete"] = "new-password"

    def _secret(self, name):
        # Blank on edit means keep: the stored value never travels to the browser and back.
        return self.cleaned_data[name] or getattr(ExotelAccount.objects.get(pk=self.instance.pk), name)

    def clean_api_key(self):
        return self._secret("api_key") if self.instance.pk else self.cleaned_data["api_key"]

    def clean_api_token(self):
        return self._secret("api_token") if self.instance.pk else self.cleaned_data["api_token"]

    def clean_api_base_url(self):
        url = self.cleaned_data["api_base_url"]
        if url:
            try:  # what can be told without DNS; campaigns.accounts checks the address before each use
                weburls.check_outbound(url, hosts=settings.EXOTEL_API_HOSTS, resolve=False)
            except weburls.Refused as exc:
                raise forms.ValidationError(f"{exc} The API base URL must be one of Exotel's API hosts.") from None
        return url

    def validate_unique(self):
        # workspace is not a form field, so ModelForm would skip the (workspace, account_sid) check.
        try:
            self.instance.validate_constraints()
        except forms.ValidationError as exc:
            self._update_errors(exc)


class ExophoneForm(forms.ModelForm):
    # A plain field: the number is brought to E.164 in clean(), where the country is known.
    number = forms.CharField(max_length=30, help_text="Your Exotel virtual number (caller ID), e.g. 08047491899.")
    region = forms.ChoiceField(choices=[(r, r) for r in sorted(phonenumbers.SUPPORTED_REGIONS)], initial="IN",
                               label="Country if no +")

    class Meta:
        model = Exophone
        fields = ["account", "number", "label", "allowed_countries"]
        help_texts = {"allowed_countries": "Country calling codes it may call, as [91, 971]; blank: its own country only."}

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.workspace = workspace
        self.fields["account"].queryset = ExotelAccount.objects.filter(workspace=workspace)

    def clean_allowed_countries(self):
        return self.cleaned_data["allowed_countries"] or []

    def clean(self):
        data = super().clean()
        raw = data.get("number")
        if raw is None:
            return data
        try:
            number = phonenumbers.parse(raw, data.get("region", "IN"))
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            self.add_error("number", f"{raw!r} is not a valid phone number.")
        else:
            data["number"] = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return data


class InviteForm(forms.Form):
    email = forms.EmailField(help_text="We mail a link to this address; only its owner can accept.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class NewAccountForm(forms.Form):
    """The password of an account created through an invitation's link (its address is the invited one)."""

    password1 = forms.CharField(label="Choose a password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label="The same again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif data.get("password1"):
            try:
                validate_password(data["password1"])
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class StreamCredentialsForm(forms.ModelForm):
    """Optional HTTP Basic credentials Exotel's applet must send with each stream; blank password keeps it."""

    stream_password = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                                      label="Stream password")

    class Meta:
        model = Workspace
        fields = ["stream_username", "stream_password"]
        labels = {"stream_username": "Stream user name"}
        help_texts = {"stream_username": "Blank: streams need no credentials (the URL's token still does)."}

    def clean_stream_password(self):
        password = self.cleaned_data["stream_password"]
        if not self.cleaned_data.get("stream_username"):
            return ""
        password = password or Workspace.objects.get(pk=self.instance.pk).stream_password
        if not password:
            raise forms.ValidationError("A user name needs a password.")
        return password


WEEKDAYS = [(1, "Mon"), (2, "Tue"), (3, "Wed"), (4, "Thu"), (5, "Fri"), (6, "Sat"), (7, "Sun")]


class CallingPolicyForm(forms.ModelForm):
    """The workspace's calling policy (campaigns.rules): a window in the recipient's time, quiet days, caps."""

    quiet_weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple, required=False,
        label="Quiet days (recipient's date)",
    )
    holidays = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Holidays (recipient's date)",
        help_text="One date a line, as 2026-12-25: no call on these days.",
    )

    class Meta:
        model = Workspace
        fields = ["calling_start", "calling_end", "quiet_weekdays", "holidays", "max_attempts_per_day",
                  "max_attempts_per_week"]
        widgets = {
            "calling_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "calling_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }
        labels = {"calling_start": "Calls from (recipient's time)", "calling_end": "Calls until (recipient's time)",
                  "max_attempts_per_day": "Attempts per number in any 24 hours",
                  "max_attempts_per_week": "Attempts per number in any 7 days"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["holidays"] = "\n".join(self.instance.holidays)

    def clean_holidays(self):
        days = []
        for line in self.cleaned_data["holidays"].split():
            try:
                days.append(datetime.date.fromisoformat(line).isoformat())
            except ValueError:
                raise forms.ValidationError(f"{line[:20]!r} is not a date such as 2026-12-25.") from None
        return sorted(set(days))

    def clean(self):
        data = super().clean()
        start, end = data.get("calling_start"), data.get("calling_end")
        if start and end and start >= end:
            self.add_error("calling_end", "The window ends after it starts, within one day.")
        day, week = data.get("max_attempts_per_day"), data.get("max_attempts_per_week")
        if day and week and day > week:
            self.add_error("max_attempts_per_day", "At most the 7-day cap.")
        return data
