from django import forms

from campaigns import csvfile
from campaigns.forms import DEFAULT_REGION, REGIONS, WEEKDAYS
from transfers.models import Agent, AgentGroup

# How many places a group's form offers; a group rings its agents one by one, so few are useful.
MAX_GROUP_SIZE = 10


class WorkspaceModelForm(forms.ModelForm):
    """A form for a row of one workspace: the row is bound to it, and the per-workspace constraints are checked
    (workspace is not a form field, so ModelForm would skip them)."""

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.workspace = workspace

    def validate_unique(self):
        try:
            self.instance.validate_constraints()
        except forms.ValidationError as exc:
            self._update_errors(exc)


class AgentForm(WorkspaceModelForm):
    # A plain field: brought to E.164 in clean(), as contacts' numbers are, once the country is known.
    phone = forms.CharField(max_length=30, help_text="The agent's own phone: mobile or desk, e.g. 98765 43210.")
    region = forms.ChoiceField(choices=REGIONS, initial=DEFAULT_REGION, label="Country if no +")
    weekdays = forms.TypedMultipleChoiceField(choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple,
                                              label="Active days")

    class Meta:
        model = Agent
        fields = ["name", "phone", "region", "active_from", "active_until", "weekdays", "paused"]
        widgets = {"active_from": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                   "active_until": forms.TimeInput(attrs={"type": "time"}, format="%H:%M")}
        help_texts = {"active_until": "In the workspace's time zone; a window may cross midnight (22:00 to 06:00)."}

    def clean(self):
        data = super().clean()
        raw = data.get("phone")
        if raw:
            phone = csvfile.normalise(raw.strip(), data.get("region", DEFAULT_REGION))
            if phone is None:
                self.add_error("phone", f"{raw!r} is not a valid phone number.")
            else:
                data["phone"] = self.instance.phone = phone
        if data.get("active_from") and data.get("active_from") == data.get("active_until"):
            self.add_error("active_until", "The active hours must not be empty.")
        return data


class AgentGroupForm(WorkspaceModelForm):
    """A group and its agents in ring order: one choice per place, the first place rung first."""

    class Meta:
        model = AgentGroup
        fields = ["name", "ring_seconds", "fallback_text"]

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, workspace=workspace, **kwargs)
        agents = Agent.objects.filter(workspace=workspace)
        current = self.instance.ordered_agents() if self.instance.pk else []
        for place in range(1, MAX_GROUP_SIZE + 1):
            self.fields[f"agent_{place}"] = forms.ModelChoiceField(
                agents, required=False, label=f"Rung {ordinal(place)}", empty_label="(nobody)",
                initial=current[place - 1] if place <= len(current) else None)

    def place_fields(self):
        return [self[f"agent_{place}"] for place in range(1, MAX_GROUP_SIZE + 1)]

    def clean(self):
        data = super().clean()
        agents = [data[name] for name in sorted(data, key=_place) if name.startswith("agent_") and data[name]]
        duplicates = {agent.name for agent in agents if agents.count(agent) > 1}
        if duplicates:
            self.add_error(None, f"An agent takes one place in a group: {', '.join(sorted(duplicates))} appears twice.")
        if not agents:
            self.add_error(None, "A group needs at least one agent.")
        data["agents"] = agents
        return data


def _place(name: str) -> int:
    return int(name.rpartition("_")[2]) if name.startswith("agent_") else 0


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
