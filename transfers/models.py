"""People a bot hands a caller to: agents, the ordered groups that ring them, and each transfer."""

import datetime
import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from tenancy.models import Workspace, validate_e164


def every_day() -> list[int]:
    return [1, 2, 3, 4, 5, 6, 7]


def validate_weekdays(value) -> None:
    if not isinstance(value, list) or not value or any(day not in range(1, 8) for day in value):
        raise ValidationError("Weekdays must be a non-empty list of ISO weekday numbers, Monday = 1 to Sunday = 7.")


class Agent(models.Model):
    """A person who takes transferred calls on their own phone, during their active hours."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=100)
    phone = models.CharField(max_length=20, validators=[validate_e164])
    # Active hours in the workspace's time zone; a window may cross midnight (22:00-06:00).
    active_from = models.TimeField(default=datetime.time(9, 0))
    active_until = models.TimeField(default=datetime.time(18, 0))
    weekdays = models.JSONField(default=every_day, validators=[validate_weekdays])
    paused = models.BooleanField(default=False, help_text="Paused agents are never rung, whatever the hour.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "phone"], name="one_agent_per_phone"),
            models.CheckConstraint(condition=~models.Q(active_from=models.F("active_until")), name="agent_hours_not_empty"),
        ]

    def __str__(self):
        return f"{self.name} {self.phone}"

    def on_duty(self, at: datetime.datetime) -> bool:
        """Whether the agent may be rung at `at` (aware): not paused, on an active day and hour."""
        if self.paused:
            return False
        local = at.astimezone(zoneinfo.ZoneInfo(self.workspace.time_zone))
        start, end, now = self.active_from, self.active_until, local.time()
        if start < end:
            return local.isoweekday() in self.weekdays and start <= now < end
        # Past midnight the shift still belongs to the day it started on.
        started = local if now >= start else local - datetime.timedelta(days=1)
        return (now >= start or now < end) and started.isoweekday() in self.weekdays


class AgentGroup(models.Model):
    """Agents rung one after another, each for `ring_seconds`, in their order, until one answers."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agent_groups")
    name = models.CharField(max_length=100)
    ring_seconds = models.PositiveSmallIntegerField(
        default=20, validators=[MinValueValidator(5), MaxValueValidator(120)],
        help_text="How long each agent rings before the next is tried (5 to 120 seconds).")
    fallback_text = models.CharField(
        max_length=300, blank=True,
        help_text="Said to the caller when nobody answered, before the call-back offer. Blank: a standard text.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="one_agent_group_per_name")]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("transfers:group_edit", args=[self.pk])

    def ordered_agents(self) -> list[Agent]:
        return [member.agent for member in self.members.select_related("agent__workspace")]


class GroupMember(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    group = models.ForeignKey(AgentGroup, on_delete=models.CASCADE, related_name="members")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="memberships")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["group", "agent"], name="agent_once_per_group"),
            models.UniqueConstraint(fields=["group", "position"], name="one_agent_per_position"),
        ]

    def __str__(self):
        return f"{self.group} #{self.position}: {self.agent}"


class Transfer(models.Model):
    """A call's hand-over to a person: who was rung, who answered, how long the caller waited and talked.

    Legs mode: ringing (one agent after another) -> whispering (the agent hears the summary) ->
    bridged (caller and agent hear each other) -> ended; or -> fallback (nobody answered: the caller
    may pick a call-back hour) -> callback. Flow mode: handed_over (the flow's Transfer applet took
    the call) -> bridged when its Passthru or status callback names the agent who answered.
    """

    class State(models.TextChoices):
        RINGING = "ringing"
        WHISPERING = "whispering"
        BRIDGED = "bridged"
        ENDED = "ended"
        FALLBACK = "fallback"
        CALLBACK = "callback"
        HANDED_OVER = "handed_over", "Handed to the flow"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE)
    call = models.OneToOneField("campaigns.Call", on_delete=models.CASCADE, related_name="transfer")
    group = models.ForeignKey(AgentGroup, on_delete=models.SET_NULL, null=True, blank=True)
    token = models.CharField(max_length=64, unique=True, editable=False)  # in the agent legs' custom_param
    state = models.CharField(max_length=12, choices=State.choices, default=State.RINGING)
    whisper = models.TextField(blank=True, help_text="What the agent hears before the caller: the call's summary.")
    requested_at = models.DateTimeField()
    # The agent being rung now, or who answered; every agent tried with the outcome, in order.
    agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="transfers")
    agent_phone = models.CharField(max_length=20, blank=True)
    agent_leg_sid = models.CharField(max_length=64, blank=True, db_index=True)
    tried = models.JSONField(default=list, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True, help_text="The agent picked up.")
    bridge_sid = models.CharField(max_length=64, blank=True, db_index=True)
    bridged_at = models.DateTimeField(null=True, blank=True, help_text="The agent hears the caller from here.")
    ended_at = models.DateTimeField(null=True, blank=True)
    callback_at = models.DateTimeField(null=True, blank=True, help_text="The call-back the caller picked.")

    class Meta:
        indexes = [models.Index(fields=["workspace", "state"], name="transfer_state")]

    def __str__(self):
        return f"transfer of call {self.call_id} ({self.state})"

    @property
    def wait_seconds(self) -> float | None:
        """How long the caller waited for a person: the request to the bridge (or to the fallback)."""
        end = self.bridged_at or (self.ended_at if self.state in (self.State.FALLBACK, self.State.CALLBACK) else None)
        return (end - self.requested_at).total_seconds() if end else None

    @property
    def talk_seconds(self) -> float | None:
        if self.bridged_at and self.ended_at:
            return (self.ended_at - self.bridged_at).total_seconds()
        return None
