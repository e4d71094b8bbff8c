"""Agents and their groups: changes that touch more than one row."""

from django.db import transaction

from transfers.models import Agent, AgentGroup, GroupMember


class InUse(Exception):
    """The row is named by something that needs it; the message says what."""


@transaction.atomic
def save_group(group: AgentGroup, agents: list[Agent]) -> AgentGroup:
    """Save the group with exactly `agents`, rung in that order."""
    group.save()
    group.members.all().delete()
    GroupMember.objects.bulk_create(
        GroupMember(workspace=group.workspace, group=group, agent=agent, position=place)
        for place, agent in enumerate(agents, start=1))
    return group


def delete_group(group: AgentGroup) -> None:
    names = list(group.campaigns.values_list("name", flat=True)[:3])
    if names:
        raise InUse(f"{group.name} takes the transfers of {', '.join(names)}: change those campaigns first.")
    group.delete()

