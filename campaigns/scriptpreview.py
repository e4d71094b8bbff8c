"""The campaign form's script preview: the script as typed (not saved yet) walked by the bot's own
stepping code (`streams.bots.script_walk`) for a contact the operator describes and the keys they choose.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from campaigns.forms import BotSettingsField
from campaigns.models import Campaign
from streams import prompts
from streams.bots import script
from streams.bots.script_walk import Preview
from streams.models import Prompt
from transfers import engine
from transfers.models import AgentGroup

MAX_ANSWERS = 100
MAX_VARIABLES = 50


def _check_inputs(variables, answers, connect_mode, transfer_group) -> None:
    if not isinstance(variables, dict) or len(variables) > MAX_VARIABLES or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise ValidationError(f"The contact's variables are at most {MAX_VARIABLES} names with text values.")
    if not isinstance(answers, list) or len(answers) > MAX_ANSWERS or not all(
        isinstance(a, str) and len(a) <= 20 and not set(a) - script.DIGITS for a in answers
    ):
        raise ValidationError(f"The caller's answers are at most {MAX_ANSWERS} texts of keys (0-9, * and #).")
    if connect_mode not in Campaign.ConnectMode.values:
        raise ValidationError(f"{connect_mode!r} is not a way calls connect.")
    if transfer_group not in (None, "") and not (str(transfer_group).isascii() and str(transfer_group).isdigit()):
        raise ValidationError("The agent group is given by its id.")


def preview_script(workspace, *, text, variables, answers, connect_mode, transfer_group) -> dict:
    """The walk of the script `text` (Preview.run's result) with "warnings": what saving it would refuse
    beyond its form (prompts the workspace lacks). ValidationError when it cannot be walked."""
    _check_inputs(variables, answers, connect_mode, transfer_group)
    spec = BotSettingsField(required=False).clean(text)
    script.validate_script(spec)
    try:
        prompts.check_named(workspace.pk, prompts.bot_references(Campaign.BotKind.SCRIPT, spec))
        warnings = []
    except ValidationError as exc:
        warnings = exc.messages
    group = AgentGroup.objects.filter(workspace=workspace, pk=transfer_group).first() if transfer_group else None
    campaign = Campaign(connect_mode=connect_mode, transfer_group=group)
    walk = Preview(spec, contact=variables, answers=answers, transfer_refusal=engine.transfer_refusal(campaign),
                   prompts=set(Prompt.objects.filter(workspace=workspace).values_list("name", flat=True)))
    return {**walk.run(), "warnings": warnings}
