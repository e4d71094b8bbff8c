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
