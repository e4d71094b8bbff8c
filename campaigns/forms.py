import datetime
import json
import zoneinfo

import phonenumbers
from django import forms
from django.utils import timezone

from campaigns import csvfile, pools, uploads
from campaigns.models import Call, Campaign, Variant
from streams import prompts
from streams.bots import relay, script
from streams.models import Prompt
from tenancy.crypto import masked
from tenancy.models import Exophone, ExotelAccount
from transfers.models import AgentGroup

WEEKDAYS = [(1, "Mon"), (2, "Tue"), (3, "Wed"), (4, "Thu"), (5, "Fri"), (6, "Sat"), (7, "Sun")]
REGIONS = sorted(
    ((r, f"{r} (+{phonenumbers.country_code_for_region(r)})") for r in phonenumbers.SUPPORTED_REGIONS),
)
DEFAULT_REGION = "IN"
# Each bot checks its own settings where it is defined (streams.bots); echo takes none.
BOT_VALIDATORS = {
    Campaign.BotKind.SCRIPT: lambda spec: script.validate_script(spec),
    Campaign.BotKind.RELAY: lambda spec: relay.validate_relay(spec),
}


def in_zone(value, zone: str):
    """A datetime typed as wall-clock time (parsed in the server's zone) re-read in `zone`."""
    if value is None:
        return None
    return timezone.make_naive(value).replace(tzinfo=zoneinfo.ZoneInfo(zone))


def bot_settings_object(value) -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise forms.ValidationError("Bot settings must be a JSON object: {…}.")
    return value


def check_bot_settings(form: forms.ModelForm, data: dict, *, field: str = "bot_settings") -> None:
    """The chosen bot's own check of its settings, then that every prompt they name is one of the
    workspace's, as an error on the form's `field` (where they were typed)."""
    if "bot_settings" not in data:
        return
    validate = BOT_VALIDATORS.get(data.get("bot_kind"))
    try:
        if validate:
            validate(data["bot_settings"])
        prompts.check_named(form.instance.workspace_id,
                            prompts.bot_references(data.get("bot_kind"), data["bot_settings"]))
    except forms.ValidationError as exc:
        form.add_error(field, exc)


def _step_at(text: str, position: int) -> int | None:
    """The number of the script step a broken JSON text is in at `position`, read from its brackets and
    strings alone; None outside `"steps": [...]`."""
    stack: list[list] = []  # per open bracket: [kind, the key being read, items before this one]
    last_string, index = "", 0
    while index < min(position, len(text)):
        char = text[index]
        if char == '"':
            end = index + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            last_string, index = text[index + 1:end], end
        elif char in "{[":
            stack.append([char, None, 0])
        elif char in "}]" and stack:
            stack.pop()
        elif char == ":" and stack and stack[-1][0] == "{":
            stack[-1][1] = last_string
        elif char == "," and stack:
            stack[-1][2] += 1
        index += 1
    if len(stack) >= 2 and stack[0][:2] == ["{", "steps"] and stack[1][0] == "[":
        return stack[1][2] + 1
    return None


class BotSettingsField(forms.JSONField):
    """A JSON object typed by hand: a text that does not parse is refused with where it breaks."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                step = _step_at(value, exc.pos)
                lines = value.splitlines()
                line = lines[exc.lineno - 1].strip()[:80] if exc.lineno <= len(lines) else ""
                raise forms.ValidationError(
                    f"The JSON breaks at line {exc.lineno}, column {exc.colno}" + (f", in step {step}" if step else "")
                    + f": {exc.msg}." + (f" The line: {line}" if line else ""), code="invalid") from None
        return super().to_python(value)


def bot_settings_field() -> forms.JSONField:
    return BotSettingsField(
        required=False, widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="A JSON object; its format depends on the bot, see beside.",
    )


class CampaignForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple, label="Calling days"
    )
    retry_on = forms.MultipleChoiceField(
        choices=[(o, o) for o in Campaign.RETRY_OUTCOMES], widget=forms.CheckboxSelectMultiple,
        required=False, label="Retry when the call was",
    )
    bot_settings = bot_settings_field()
    time_zone = forms.CharField(max_length=64, help_text="IANA name, e.g. Asia/Kolkata.")
    # The relay bot's settings as fields (stored in bot_settings); the API sends bot_settings itself.
    relay_url = forms.CharField(
        max_length=2000, required=False, label="Your bot's address",
        widget=forms.URLInput(attrs={"placeholder": "wss://bot.example.com/agent", "spellcheck": "false"}),
        help_text="A ws:// or wss:// URL, connected to from this server for every call.",
    )
    relay_token = forms.CharField(
        max_length=2000, required=False, label="Bearer token", strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Optional: sent to your bot as Authorization: Bearer <token>; stored encrypted, never shown again.",
    )
    forget_relay_token = forms.BooleanField(required=False, label="Remove the stored token")
    relay_fallback_prompt = forms.ChoiceField(
        required=False, label="Fallback prompt",
        help_text="Played to the caller when your bot cannot be reached or drops mid-call, before hanging up.",
    )

    class Meta:
        model = Campaign
        fields = [
            "name", "account", "exophones", "prefer_local_caller_id", "connect_mode", "flow_url", "greeting_text",
            "transfer_group", "bot_kind", "bot_settings", "relay_token",
            "sample_rate", "recording", "time_limit", "starts_at", "ends_at", "time_zone", "window_start",
            "window_end", "weekdays", "calls_per_minute", "max_concurrent", "max_attempts", "retry_after_minutes",
            "retry_on", "scrub_max_age_days", "machine_detection", "on_machine", "voicemail_prompt", "budget",
        ]
        widgets = {
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "window_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "window_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "greeting_text": forms.TextInput(),
            "exophones": forms.CheckboxSelectMultiple,
        }
        labels = {"account": "Exotel account", "exophones": "Caller IDs (Exophones)",
                  "prefer_local_caller_id": "Prefer a local caller ID",
                  "transfer_group": "Transfers go to", "calls_per_minute": "Pacing (calls per minute)",
                  "max_concurrent": "Concurrent calls cap"}
        help_texts = {
            "starts_at": "Optional; in the campaign's time zone.",
            "ends_at": "Optional; in the campaign's time zone.",
            "greeting_text": "Legs mode: said while the stream starts, so the caller hears no dead air.",
            "flow_url": "Flow mode: the Exotel flow whose Voicebot applet points at this app.",
            "window_end": "In the campaign's time zone; the workspace's calling rules, in each recipient's time, "
                          "narrow it further.",
            "exophones": "Calls rotate over these numbers, least recently used first.",
            "transfer_group": "Who takes the calls the bot transfers to a person. Legs mode rings them from the "
                              "call's Exophone; Flow mode hands the call to the flow's Transfer applet; "
                              "Voice AI (direct) has no transfer: use Legs.",
        }

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        self.fields["account"].queryset = ExotelAccount.objects.filter(workspace=workspace)
        self.fields["exophones"].queryset = Exophone.objects.filter(workspace=workspace).select_related("account")
        self.fields["transfer_group"].queryset = AgentGroup.objects.filter(workspace=workspace)
        self.fields["bot_settings"].widget.attrs["aria-describedby"] = "bot-settings-format"
        prompt_names = Prompt.objects.filter(workspace=workspace).values_list("name", flat=True)
        self.fields["relay_fallback_prompt"].choices = [("", "None: hang up at once"), *((n, n) for n in prompt_names)]
        if self.instance.bot_kind == Campaign.BotKind.RELAY:
            self.initial["relay_url"] = self.instance.bot_settings.get("url", "")
            self.initial["relay_fallback_prompt"] = self.instance.bot_settings.get("fallback_prompt", "")
        if self.instance.relay_token:
            self.fields["relay_token"].help_text = (f"Stored: {masked(self.instance.relay_token)}. Leave blank to "
                                                    "keep it.")
        zone = zoneinfo.ZoneInfo(self.instance.time_zone)
        # Show stored UTC instants as wall-clock time in the campaign's zone, as they were typed.
        for name in ("starts_at", "ends_at"):
            value = getattr(self.instance, name)
            if value and not self.is_bound:
                self.initial[name] = value.astimezone(zone).replace(tzinfo=None)

    @property
    def row_fields(self) -> list[str]:
        """The fields stored on the campaign's row (the pool is a relation, saved by save_m2m)."""
        return [name for name in self.Meta.fields if name != "exophones"]

    def clean_time_zone(self):
        value = self.cleaned_data["time_zone"].strip()
        if value not in zoneinfo.available_timezones():
            raise forms.ValidationError(f"{value!r} is not a time zone name such as Asia/Kolkata.")
        return value

    def clean_voicemail_prompt(self):
        name = self.cleaned_data["voicemail_prompt"].strip()
        if name and not Prompt.objects.filter(workspace=self.workspace, name=name).exists():
            raise forms.ValidationError(f"There is no prompt named {name!r}; upload it on the Prompts page first.")
        return name

    def clean_relay_token(self):
        token = self.cleaned_data["relay_token"]
        relay.check_token(token)
        # Blank keeps the stored token: it never travels to the browser and back.
        return token or self.instance.relay_token

    def clean_bot_settings(self):
        return bot_settings_object(self.cleaned_data["bot_settings"])

    def clean(self):
        data = super().clean()
        if data.get("account"):
            try:
                pools.check_pool(data["account"], data.get("exophones", ()))
            except forms.ValidationError as exc:
                self.add_error(None, exc)
        settings_field = "bot_settings"
        if data.get("bot_kind") == Campaign.BotKind.RELAY and "relay_url" in self.data:
            settings_field = "relay_url"
            fallback = data.get("relay_fallback_prompt")
            data["bot_settings"] = {"url": data.get("relay_url", "").strip(),
                                    **({"fallback_prompt": fallback} if fallback else {})}
            self.errors.pop("bot_settings", None)  # the JSON box is not what a relay is set with here
        if data.get("bot_kind") != Campaign.BotKind.RELAY or data.get("forget_relay_token"):
            data["relay_token"] = ""  # no secret kept for a bot that does not use it
        check_bot_settings(self, data, field=settings_field)
        zone = data.get("time_zone")
        if zone:
            for name in ("starts_at", "ends_at"):
                data[name] = in_zone(data.get(name), zone)
                setattr(self.instance, name, data[name])
        return data


class VariantForm(forms.ModelForm):
    """One arm of a campaign's A/B test; a new one starts from the campaign's own greeting and bot."""

    bot_settings = bot_settings_field()

    class Meta:
        model = Variant
        fields = ["name", "weight", "greeting_text", "bot_kind", "bot_settings"]
        widgets = {"greeting_text": forms.TextInput()}
        help_texts = {"greeting_text": "Legs mode: said while the stream starts."}

    def __init__(self, *args, campaign: Campaign, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.instance.campaign, self.instance.workspace_id = campaign, campaign.workspace_id
        if self.instance.pk is None and not self.is_bound:
            self.initial.update(greeting_text=campaign.greeting_text, bot_kind=campaign.bot_kind,
                                bot_settings=campaign.bot_settings)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Variant.objects.filter(campaign=self.campaign, name__iexact=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"This campaign already has a variant named {name!r}.")
        return name

    def clean_bot_settings(self):
        return bot_settings_object(self.cleaned_data["bot_settings"])

    def clean(self):
        data = super().clean()
        check_bot_settings(self, data)
        return data


class UploadForm(uploads.BoundedFileForm):
    region = forms.ChoiceField(
        choices=REGIONS, initial=DEFAULT_REGION, label="Country of numbers without +",
    )
    file = forms.FileField(label="CSV file", help_text="First line: column names; one must be phone.")


class RegistryFileForm(UploadForm):
    file_date = forms.DateField(label="Date of the registry's file", widget=forms.DateInput(attrs={"type": "date"}),
                                help_text="The day the national registry published it; campaigns may require a recent one.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = "A CSV of numbers: a phone column, or one number per line."

    def clean_file_date(self):
        if self.cleaned_data["file_date"] > timezone.localdate():
            raise forms.ValidationError("The registry's file cannot be dated in the future.")
        return self.cleaned_data["file_date"]


class DoNotCallForm(forms.Form):
    phone = forms.CharField(max_length=30)
    reason = forms.CharField(max_length=200, required=False)
    region = forms.ChoiceField(choices=REGIONS, initial=DEFAULT_REGION, label="Country if no +")


class TestCallForm(forms.Form):
    phone = forms.CharField(max_length=30, label="Your phone number")
    region = forms.ChoiceField(choices=REGIONS, initial=DEFAULT_REGION, label="Country if no +")

    def clean(self):
        cleaned = super().clean()
        if "phone" in cleaned and "region" in cleaned:
            # Checked as an uploaded contact's number is.
            phone = csvfile.normalise(cleaned["phone"].strip(), cleaned["region"])
            if phone is None:
                self.add_error("phone", f"{cleaned['phone']!r} is not a valid phone number.")
            cleaned["phone"] = phone
        return cleaned


class CallFilterForm(forms.Form):
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.none(), required=False, empty_label="All campaigns")
    state = forms.ChoiceField(choices=[("", "Any state"), *Call.State.choices], required=False)
    disposition = forms.CharField(max_length=100, required=False)
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    phone = forms.CharField(max_length=20, required=False, label="Phone contains")

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = Campaign.objects.filter(workspace=workspace).only("pk", "name")


class CloneForm(forms.Form):
    name = forms.CharField(max_length=Campaign._meta.get_field("name").max_length, label="Name of the new campaign")


class RecallForm(CloneForm):
    """Which contacts of a campaign a re-call takes: their last call's outcome or disposition, and its days."""

    outcomes = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                         label="Last call was")
    dispositions = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                             label="or the bot's disposition was")
    since = forms.DateField(label="Placed from", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="to", widget=forms.DateInput(attrs={"type": "date"}),
                            help_text="Days in the workspace's time zone, both included.")

    def __init__(self, *args, campaign, outcomes, **kwargs):
        yesterday = timezone.localdate(timezone=zoneinfo.ZoneInfo(campaign.workspace.time_zone)) - datetime.timedelta(1)
        kwargs.setdefault("initial", {"name": f"{campaign.name} (re-call)", "since": yesterday, "until": yesterday})
        super().__init__(*args, **kwargs)
        self.fields["outcomes"].choices = outcomes
        self.fields["dispositions"].choices = [
            (d, d) for d in campaign.dispositions.filter(calls__gt=0).order_by("disposition")
            .values_list("disposition", flat=True)]

    def clean(self):
        data = super().clean()
        if not data.get("outcomes") and not data.get("dispositions"):
            raise forms.ValidationError("Choose at least one outcome or disposition to re-call.")
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The last day must not come before the first.")
        return data
