import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from tenancy.crypto import EncryptedTextField
from tenancy.models import Exophone, ExotelAccount, Workspace, new_token, validate_e164


class InvalidTransition(Exception):
    """A state change the model's rules do not allow; refused, never silently applied."""


def check_transition(rules: dict, current: str, new: str, *, what: str) -> None:
    if new not in rules.get(current, ()):
        raise InvalidTransition(f"{what} cannot go from {current!r} to {new!r}")


def sources_of(rules: dict, new: str) -> list[str]:
    """The states from which `new` may be reached, for conditional UPDATE … WHERE state IN (…)."""
    return [state for state, targets in rules.items() if new in targets]


def validate_weekdays(value) -> None:
    if not isinstance(value, list) or not value or any(day not in range(1, 8) for day in value):
        raise ValidationError("Weekdays must be a non-empty list of ISO weekday numbers, Monday = 1 to Sunday = 7.")


def default_weekdays() -> list[int]:
    return [1, 2, 3, 4, 5, 6]


def default_retry_on() -> list[str]:
    return ["busy", "no-answer", "failed"]


class Campaign(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft"
        SCHEDULED = "scheduled"
        RUNNING = "running"
        PAUSED = "paused"
        COMPLETED = "completed"
        CANCELLED = "cancelled"

    TRANSITIONS = {
        State.DRAFT: {State.SCHEDULED, State.RUNNING, State.CANCELLED},
        State.SCHEDULED: {State.RUNNING, State.PAUSED, State.CANCELLED},
        State.RUNNING: {State.PAUSED, State.COMPLETED, State.CANCELLED},
        State.PAUSED: {State.RUNNING, State.SCHEDULED, State.CANCELLED},
    }

    class ConnectMode(models.TextChoices):
        VOICE_AI = "voice_ai", "Voice AI (connect straight to the bot)"
        FLOW = "flow", "Flow (an Exotel flow reaches the bot)"
        LEGS = "legs", "Legs (greeting while the stream starts)"

    class BotKind(models.TextChoices):
        ECHO = "echo", "Echo"
        SCRIPT = "script", "Scripted IVR"
        RELAY = "relay", "Relay to your own bot"

    class Recording(models.TextChoices):
        OFF = "off"
        SINGLE = "single", "Single (merged)"
        DUAL = "dual", "Dual (separate tracks)"

    class MachineDetection(models.TextChoices):
        OFF = "off", "Off"
        ON = "on", "On"
        ASYNC = "async", "On, without holding the answer (Legs: async_amd)"

    class OnMachine(models.TextChoices):
        HANG_UP = "hang_up", "Hang up and retry later (counts as no answer)"
        LEAVE_MESSAGE = "leave_message", "Leave a message after the greeting or the beep, then hang up"

    SAMPLE_RATES = [(8000, "8 kHz"), (16000, "16 kHz"), (24000, "24 kHz")]
    RETRY_OUTCOMES = ["busy", "no-answer", "failed"]

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=120)
    account = models.ForeignKey(ExotelAccount, on_delete=models.PROTECT, related_name="campaigns")
    # The caller-ID pool (campaigns/pools.py): numbers of the campaign's account, least recently used first.
    exophones = models.ManyToManyField(Exophone, related_name="campaigns")
    prefer_local_caller_id = models.BooleanField(
        default=False, help_text="Prefer a number in the recipient's area where the numbering data tells it.")
    connect_mode = models.CharField(max_length=10, choices=ConnectMode.choices, default=ConnectMode.VOICE_AI)
    flow_url = models.URLField(blank=True, max_length=300)
    greeting_text = models.CharField(max_length=500, blank=True)
    # Who takes the calls a bot transfers (transfers/): Legs rings them itself, Flow hands over to its Transfer applet.
    transfer_group = models.ForeignKey("transfers.AgentGroup", on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="campaigns")
    bot_kind = models.CharField(max_length=10, choices=BotKind.choices, default=BotKind.ECHO)
    bot_settings = models.JSONField(default=dict, blank=True)
    # A secret of the customer's relay bot, kept out of bot_settings (shown in the API and the admin).
    relay_token = EncryptedTextField(blank=True, verbose_name="Relay bearer token")
    sample_rate = models.PositiveIntegerField(choices=SAMPLE_RATES, default=8000)
    # Answering machines (campaigns/machines.py): Exotel's verdict and our own ear on the stream.
    machine_detection = models.CharField(max_length=5, choices=MachineDetection.choices,
                                         default=MachineDetection.OFF, verbose_name="Detect answering machines")
    on_machine = models.CharField(max_length=15, choices=OnMachine.choices, default=OnMachine.HANG_UP,
                                  verbose_name="On a machine")
    voicemail_prompt = models.CharField(max_length=100, blank=True, verbose_name="Message prompt",
                                        help_text="The workspace prompt played to a machine after its beep.")
    recording = models.CharField(max_length=10, choices=Recording.choices, default=Recording.OFF)
    time_limit = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(1), MaxValueValidator(14400)], help_text="Seconds, at most 14400."
    )
    # Schedule: absolute bounds, then a daily window in the campaign's time zone (may cross midnight).
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    window_start = models.TimeField(default=datetime.time(9, 0))
    window_end = models.TimeField(default=datetime.time(21, 0))
    weekdays = models.JSONField(default=default_weekdays, validators=[validate_weekdays])
    time_zone = models.CharField(max_length=64, default=settings.DEFAULT_TIME_ZONE)
    calls_per_minute = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    max_concurrent = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)])
    max_attempts = models.PositiveIntegerField(default=3, validators=[MinValueValidator(1)])
    retry_after_minutes = models.PositiveIntegerField(default=30)
    retry_on = models.JSONField(default=default_retry_on, blank=True)
    scrub_max_age_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], verbose_name="Registry scrub newer than (days)",
        help_text="Start, and keep dialling, only while the national registry's scrub file last imported is "
                  "newer than this many days. Empty: not required.",
    )
    # Money (campaigns/costs.py): reached by the priced calls plus the estimate of the unpriced, it pauses the campaign.
    budget = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Optional, in the Exotel account's currency. When the calls' cost reaches it the campaign pauses "
                  "itself; calls in flight finish.",
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    last_error = models.CharField(max_length=500, blank=True)
    # Counters kept up to date as calls change state, so pages never aggregate a million rows.
    contacts_total = models.PositiveIntegerField(default=0)
    contacts_done = models.PositiveIntegerField(default=0)
    calls_total = models.PositiveIntegerField(default=0)
    calls_live = models.IntegerField(default=0)
    calls_answered = models.PositiveIntegerField(default=0)
    calls_busy = models.PositiveIntegerField(default=0)
    calls_no_answer = models.PositiveIntegerField(default=0)
    calls_failed = models.PositiveIntegerField(default=0)
    calls_machine = models.PositiveIntegerField(default=0)  # ended calls answered by a machine
    talk_seconds = models.PositiveBigIntegerField(default=0)
    # Dispatcher state (campaigns/schedule.py): a token bucket of calls that may start, the rate
    # factor that a 429 lowers and time restores, and when Exotel asked us to hold off until.
    pace_credit = models.FloatField(default=0)
    paced_at = models.DateTimeField(null=True, blank=True)
    pace_factor = models.FloatField(default=1.0)
    backoff_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state"], name="campaign_state")]
        constraints = [
            models.CheckConstraint(condition=models.Q(time_limit__lte=14400), name="time_limit_at_most_14400"),
            models.CheckConstraint(condition=models.Q(sample_rate__in=[8000, 16000, 24000]), name="known_sample_rate"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("campaigns:detail", args=[self.pk])

    def clean(self):
        errors = {}
        if self.connect_mode == self.ConnectMode.FLOW and not self.flow_url:
            errors["flow_url"] = "Flow mode needs the flow URL."
        if self.transfer_group_id and self.connect_mode == self.ConnectMode.VOICE_AI:
            errors["transfer_group"] = ("Voice AI (direct) calls cannot be transferred: Exotel has no transfer "
                                        "there. Choose Legs (we ring the agents) or Flow (its Transfer applet).")
        if self.ends_at and self.starts_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The end must come after the start."
        if self.window_start == self.window_end:
            errors["window_end"] = "The daily window must not be empty."
        if self.machine_detection == self.MachineDetection.ASYNC and self.connect_mode != self.ConnectMode.LEGS:
            errors["machine_detection"] = "Only Legs mode can take Exotel's answer before its verdict; choose On."
        if (self.machine_detection != self.MachineDetection.OFF and self.on_machine == self.OnMachine.LEAVE_MESSAGE
                and not self.voicemail_prompt):
            errors["voicemail_prompt"] = "Leaving a message needs the prompt to play."
        if any(outcome not in self.RETRY_OUTCOMES for outcome in self.retry_on or []):
            errors["retry_on"] = f"Retry outcomes are a subset of {', '.join(self.RETRY_OUTCOMES)}."
        if errors:
            raise ValidationError(errors)

    def transition(self, new: "Campaign.State") -> None:
        check_transition(self.TRANSITIONS, self.state, new, what="A campaign")
        self.state = new

    @property
    def progress(self) -> int:
        """Percent of contacts whose outcome is final."""
        return round(100 * self.contacts_done / self.contacts_total) if self.contacts_total else 0


class CampaignEvent(models.Model):
    """Every lifecycle change of a campaign, with who made it (None: the system)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=30)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return f"{self.campaign}: {self.action}"


class Variant(models.Model):
    """One arm of a campaign's A/B test: the bot its share of the contacts get (campaigns/experiments.py).

    A campaign with variants runs each call with its contact's variant's greeting and bot instead of
    its own; a contact keeps its variant on every attempt."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=40)
    weight = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Its share of the contacts is its weight over the sum of the variants' weights.")
    greeting_text = models.CharField(max_length=500, blank=True)
    bot_kind = models.CharField(max_length=10, choices=Campaign.BotKind.choices, default=Campaign.BotKind.ECHO)
    bot_settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="one_variant_name_per_campaign"),
            models.CheckConstraint(condition=models.Q(weight__gte=1, weight__lte=1000), name="variant_weight_1_to_1000"),
        ]

    def __str__(self):
        return self.name


class Recipient(models.Model):
    """A number as the workspace dials it, whatever the campaign: the ledger its attempt caps are checked on.

    The dispatcher locks this row with each contact it claims, so two campaigns dialling the same
    number at once take turns, and the second sees the first one's attempt (campaigns.compliance).
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="recipients")
    phone = models.CharField(max_length=20)
    attempts = models.JSONField(default=list, blank=True, help_text="Unix times of the last 7 days' attempts.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "phone"], name="one_recipient_per_phone")]

    def __str__(self):
        return self.phone


class Contact(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"  # due once next_attempt_at has passed
        CALLING = "calling"  # an attempt is live
        DONE = "done"  # final: see outcome
        SKIPPED = "skipped"  # never dialled again: see outcome and its Hold (do-not-call, no window, …)
        CANCELLED = "cancelled"

    TRANSITIONS = {
        State.PENDING: {State.CALLING, State.SKIPPED, State.CANCELLED},
        # Skipped from calling: its queued call was withdrawn before dialling (number on the list).
        State.CALLING: {State.PENDING, State.DONE, State.SKIPPED},
    }
    FINAL_STATES = [State.DONE, State.SKIPPED, State.CANCELLED]

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contacts")
    phone = models.CharField(max_length=20, validators=[validate_e164])
    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="contacts")
    # The recipient's IANA zones, space-separated (campaigns.rules): from the upload, else the number's.
    time_zone = models.CharField(max_length=1000, blank=True)
    name = models.CharField(max_length=200, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, blank=True)
    # Its A/B variant, chosen at its first call and kept for the retries (campaigns/experiments.py).
    variant = models.ForeignKey(Variant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "phone"], name="one_contact_per_phone")]
        # The dispatcher's query: due contacts of one campaign, oldest first.
        indexes = [models.Index(fields=["campaign", "state", "next_attempt_at"], name="contact_due")]

    def __str__(self):
        return f"{self.name} {self.phone}".strip()

    def transition(self, new: "Contact.State") -> None:
        check_transition(self.TRANSITIONS, self.state, new, what="A contact")
        self.state = new



class ContactUpload(models.Model):
    """A contact file from its upload to its import; tasks do the reading and writing (campaigns.imports)."""

    class State(models.TextChoices):
        CHECKING = "checking"  # a task reads and checks every row
        READY = "ready"  # the preview is shown, waiting for the operator's confirmation
        IMPORTING = "importing"
        IMPORTED = "imported"
        REFUSED = "refused"  # the file as a whole cannot be imported: see message

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    region = models.CharField(max_length=3)
    state = models.CharField(max_length=10, choices=State.choices, default=State.CHECKING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent of the current step.")
    message = models.CharField(max_length=500, blank=True)
    report = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "created_at"], name="upload_state_age")]

    def __str__(self):
        return f"upload {self.pk} to {self.campaign_id} ({self.state})"

    def get_absolute_url(self):
        return reverse("campaigns:upload_status", args=[self.campaign_id, self.pk])

class Hold(models.Model):
    """A contact the dispatcher held back from a dial it was due for: until a time, or for good (a skip)."""

    class Reason(models.TextChoices):
        DO_NOT_CALL = "do-not-call", "On the do-not-call list"
        NO_WINDOW = "no-window", "Outside every window"
        CAP = "cap", "Attempt cap reached"
        UNREACHABLE = "unreachable", "Invalid or non-dialable number"
        COUNTRY_NOT_ALLOWED = "country-not-allowed", "Country not allowed for this Exophone"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="holds")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="holds")
    phone = models.CharField(max_length=20)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField()
    until = models.DateTimeField(null=True, blank=True, help_text="Blank: for good.")

    class Meta:
        indexes = [
            models.Index(fields=["campaign", "at"], name="hold_campaign_at"),
            models.Index(fields=["workspace", "phone", "at"], name="hold_phone_at"),
        ]

    def __str__(self):
        return f"{self.phone} {self.reason} at {self.at:%Y-%m-%d %H:%M}"


class DoNotCall(models.Model):
    """A number no campaign of the workspace may ring, with where the wish came from and when."""

    class Source(models.TextChoices):
        MANUAL = "manual", "Operator"
        UPLOAD = "upload", "Operator's file"
        REGISTRY = "registry", "National registry scrub"
        DTMF = "dtmf", "Bot: key pressed"
        SCRIPT = "script", "Bot: script step"
        RELAY = "relay", "Your bot (relay message)"
        PASSTHRU = "passthru", "Passthru disposition"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="do_not_call")
    phone = models.CharField(max_length=20, validators=[validate_e164])
    reason = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "do-not-call number"
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["workspace", "phone"], name="one_dnc_entry_per_phone")]
        indexes = [models.Index(fields=["workspace", "source", "-created_at"], name="dnc_by_source")]

    def __str__(self):
        return self.phone


class DoNotCallImport(models.Model):
    """A file of numbers on its way into the do-not-call list: an operator's, or the national registry's
    scrub file (with the date the registry published it). While one is importing, the workspace's
    dialling is held (campaigns.donotcall.check_gate)."""

    class State(models.TextChoices):
        IMPORTING = "importing"
        IMPORTED = "imported"
        REFUSED = "refused"  # the file as a whole could not be read: see message

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    source = models.CharField(max_length=10, choices=[(s.value, s.label) for s in (
        DoNotCall.Source.UPLOAD, DoNotCall.Source.REGISTRY)])
    file_date = models.DateField(null=True, blank=True, help_text="Registry files: the date it was published.")
    region = models.CharField(max_length=3)
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.IMPORTING)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent of the file read.")
    added = models.PositiveIntegerField(default=0)
    already = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first rejected rows.")
    message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    worked_at = models.DateTimeField(null=True, blank=True, help_text="The importing task's last sign of life.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "state"], name="dnc_import_state")]
        constraints = [models.CheckConstraint(
            condition=~models.Q(source="registry") | models.Q(file_date__isnull=False), name="registry_file_dated")]

    def __str__(self):
        return f"{self.source} import {self.pk} ({self.state})"


class Call(models.Model):
    """One attempt to reach one contact."""

    class State(models.TextChoices):
        QUEUED = "queued"
        DIALING = "dialing"
        RINGING = "ringing"
        IN_PROGRESS = "in-progress"
        COMPLETED = "completed"
        BUSY = "busy"
        NO_ANSWER = "no-answer"
        FAILED = "failed"
        CANCELED = "canceled"
        UNKNOWN = "unknown"  # the request may have reached Exotel; a callback or a timeout decides

    _OUTCOMES = {State.COMPLETED, State.BUSY, State.NO_ANSWER, State.FAILED, State.CANCELED}
    TRANSITIONS = {
        # Back to queued only when Exotel certainly never saw the request (a transient error).
        State.QUEUED: {State.DIALING, State.CANCELED, State.FAILED},
        State.DIALING: {State.QUEUED, State.RINGING, State.IN_PROGRESS, State.UNKNOWN} | _OUTCOMES,
        State.UNKNOWN: {State.RINGING, State.IN_PROGRESS} | _OUTCOMES,
        State.RINGING: {State.IN_PROGRESS} | _OUTCOMES,
        State.IN_PROGRESS: {State.COMPLETED, State.FAILED},
    }
    LIVE_STATES = [State.DIALING, State.RINGING, State.IN_PROGRESS, State.UNKNOWN]
    FINAL_STATES = sorted(_OUTCOMES)
    # Which timestamp each transition stamps; every final state stamps ended_at.
    STAMPS = {State.DIALING: "dialed_at", State.RINGING: "ringing_at", State.IN_PROGRESS: "answered_at"}

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="calls")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="calls")
    attempt = models.PositiveIntegerField()
    phone = models.CharField(max_length=20)  # as dialled, kept here for search without a join
    # The caller ID, chosen from the campaign's pool when the call is queued.
    exophone = models.ForeignKey(Exophone, on_delete=models.PROTECT, null=True, related_name="calls")
    # The A/B variant whose bot ran this call; a variant with calls is kept for their figures (it goes
    # with its campaign).
    variant = models.ForeignKey(Variant, on_delete=models.RESTRICT, null=True, blank=True, related_name="calls")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    exotel_sid = models.CharField(max_length=64, blank=True, db_index=True)
    leg_sid = models.CharField(max_length=64, blank=True, db_index=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    # When its place_call task was sent (a delayed retry: when it is due); see calls.reap_stale_calls.
    enqueued_at = models.DateTimeField(default=timezone.now)
    dialed_at = models.DateTimeField(null=True, blank=True)
    ringing_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.PositiveIntegerField(null=True, blank=True, help_text="Seconds.")
    recording_url = models.URLField(blank=True, max_length=500)
    disposition = models.CharField(max_length=100, blank=True)
    disconnected_by = models.CharField(max_length=20, blank=True)
    detailed_status = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    # The HTTP status of Exotel's refusal of this attempt, if any (a 5xx refusal retries the same attempt).
    exotel_status = models.PositiveSmallIntegerField(null=True, blank=True)
    dead_air_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Legs: answer to first audio heard.")
    greeting_ended_at = models.DateTimeField(null=True, blank=True, help_text="Legs: Exotel's say_completed.")
    first_audio_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Time to first audio: from the answer to our first audio frame sent.")
    allowed_by = models.CharField(max_length=300, blank=True, help_text="The rules that let this attempt start.")
    # The relay bot's own account of the call (streams/bots/relay.py), stored when its stream ends.
    transcript = models.JSONField(default=list, blank=True, help_text="Lines of [speaker, text] from your bot.")
    summary = models.TextField(blank=True)
    # Who answered (campaigns/machines.py): the first definite verdict, where it came from, and how
    # long after the answer (our clock) it came; every source's own verdict is kept in `amd_verdicts`.
    answered_by = models.CharField(max_length=10, blank=True, choices=[("human", "Person"), ("machine", "Machine")])
    answered_by_source = models.CharField(max_length=10, blank=True)
    answered_by_ms = models.PositiveIntegerField(null=True, blank=True, help_text="From the answer to the verdict.")
    amd_verdicts = models.JSONField(default=dict, blank=True)
    # What Exotel charged (Call Details' Price, filled minutes after the end; campaigns/costs.py), and
    # when to ask again while it has none.
    price = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    price_currency = models.CharField(max_length=3, blank=True)
    price_checks = models.PositiveSmallIntegerField(default=0, help_text="Times Exotel was asked for the price.")
    price_due_at = models.DateTimeField(null=True, blank=True, help_text="Blank: PRICE_FIRST_CHECK after the end.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "attempt"], name="one_call_per_attempt")]
        indexes = [
            models.Index(fields=["campaign", "state"], name="call_campaign_state"),
            models.Index(fields=["campaign", "-created_at", "-id"], name="call_campaign_page"),
            models.Index(fields=["workspace", "-created_at", "-id"], name="call_workspace_page"),
            models.Index(fields=["state", "enqueued_at"], name="call_state_enqueued"),  # the reaper's
            models.Index(fields=["exophone", "created_at"], name="call_exophone_recent"),  # health's
            # campaigns.costs: the price sweep's (ended Connect calls not priced yet), and the budget's estimate.
            models.Index(fields=["ended_at"], condition=models.Q(price__isnull=True, ended_at__isnull=False, leg_sid="")
                         & ~models.Q(exotel_sid=""), name="call_price_due"),
            models.Index(fields=["campaign"], condition=models.Q(price__isnull=True, duration__gt=0),
                         name="call_unpriced"),
        ]

    def __str__(self):
        return f"{self.phone} #{self.attempt} ({self.state})"

    def get_absolute_url(self):
        return reverse("campaigns:call", args=[self.pk])

    @property
    def was_answered(self) -> bool:
        # A completed call was answered even when its `answered` callback lost the race to `terminal`.
        return self.answered_at is not None or self.state == self.State.COMPLETED

    @property
    def bot(self) -> "Campaign | Variant":
        """Whose greeting and bot (greeting_text, bot_kind, bot_settings) this call runs."""
        return self.variant if self.variant_id else self.campaign

    @property
    def answered_by_a_person(self) -> bool:
        """What the answer rate counts: answered, and not by a machine (campaigns.machines)."""
        return self.was_answered and self.answered_by != "machine"

    @property
    def latest_moment(self) -> tuple[str, datetime.datetime]:
        """What last happened to the call on its way to the line, and when: the live list's "Last event"."""
        for field, what in (("answered_at", "answered"), ("ringing_at", "ringing"), ("dialed_at", "dialled")):
            if at := getattr(self, field):
                return what, at
        return "queued", self.enqueued_at

    def transition(self, new: "Call.State", *, at: datetime.datetime | None = None) -> list[str]:
        """Apply a state change and stamp its time; returns the fields to save."""
        check_transition(self.TRANSITIONS, self.state, new, what="A call")
        self.state = new
        stamp = "ended_at" if new in self.FINAL_STATES else self.STAMPS.get(new)
        if stamp is None:
            return ["state"]
        setattr(self, stamp, at or timezone.now())
        return ["state", stamp]


class QuarterRollup(models.Model):
    """A campaign's calls placed in one quarter hour (UTC), and how many of those have ended and were answered.

    Kept by the engine as calls change (campaigns/rollups.py), so that the charts read a day's 96 rows
    instead of every call.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="quarters")
    starts_at = models.DateTimeField()
    placed = models.PositiveIntegerField(db_default=0)  # an upsert names only what it adds
    ended = models.PositiveIntegerField(db_default=0)
    answered = models.PositiveIntegerField(db_default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "starts_at"], name="one_rollup_per_quarter")]

    def __str__(self):
        return f"{self.campaign_id} at {self.starts_at:%Y-%m-%d %H:%M}: {self.placed} placed"


class DispositionRollup(models.Model):
    """How many of a campaign's calls have one disposition, kept by the engine (campaigns/rollups.py)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="dispositions")
    disposition = models.CharField(max_length=100)
    calls = models.PositiveIntegerField(db_default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "disposition"], name="one_rollup_per_disposition")]

    def __str__(self):
        return f"{self.campaign_id} {self.disposition}: {self.calls}"


class CostRollup(models.Model):
    """A campaign's priced calls that ended on one day of its workspace's calendar (campaigns/costs.py).

    Added to in the transaction that stores a call's price, so totals per campaign and per day read
    a few rows instead of every call.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="costs")
    day = models.DateField()
    calls = models.PositiveIntegerField(db_default=0)
    amount = models.DecimalField(max_digits=14, decimal_places=4, db_default=Decimal(0))
    billed_minutes = models.PositiveIntegerField(db_default=0, help_text="Started minutes of the priced calls.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "day"], name="one_cost_rollup_per_day")]

    def __str__(self):
        return f"{self.campaign_id} on {self.day}: {self.amount}"
