"""Agents and agent groups: operators manage them in their workspace; campaigns name the group for transfers."""

import datetime

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from tenancy.models import Membership, Role
from tests.conftest import make_campaign
from transfers import services
from transfers.models import Agent, AgentGroup

pytestmark = pytest.mark.django_db

AGENT = {"name": "Ravi", "phone": "98765 43210", "region": "IN", "active_from": "09:00", "active_until": "18:00",
         "weekdays": ["1", "2", "3", "4", "5"]}


def make_agent(workspace, name="Ravi", phone="+919876543210", **fields) -> Agent:
    return Agent.objects.create(workspace=workspace, name=name, phone=phone, **fields)


def make_group(workspace, *agents, **fields) -> AgentGroup:
    return services.save_group(AgentGroup(workspace=workspace, name=fields.pop("name", "Sales"), **fields), list(agents))


def test_an_operator_adds_an_agent_whose_number_is_stored_in_e164(alice_client, acme):
    response = alice_client.post(reverse("transfers:agent_create"), AGENT)
    assert response.status_code == 302
    agent = Agent.objects.get(workspace=acme)
    assert (agent.phone, agent.weekdays, agent.active_until) == ("+919876543210", [1, 2, 3, 4, 5], datetime.time(18))
    assert "Ravi" in alice_client.get(reverse("transfers:agents")).content.decode()


@pytest.mark.parametrize("phone", ["12345", "not a number", "+91 98765"])
def test_a_bad_number_is_refused_with_a_reason(alice_client, acme, phone):
    response = alice_client.post(reverse("transfers:agent_create"), {**AGENT, "phone": phone})
    assert response.status_code == 200 and "is not a valid phone number" in response.context["form"].errors["phone"][0]
    assert not Agent.objects.exists()


def test_one_agent_per_number_and_non_empty_hours(alice_client, acme):
    make_agent(acme)
    response = alice_client.post(reverse("transfers:agent_create"), AGENT)
    assert response.status_code == 200 and response.context["form"].errors
    response = alice_client.post(reverse("transfers:agent_create"), {**AGENT, "phone": "+919876500000",
                                                                     "active_until": "09:00"})
    assert "active_until" in response.context["form"].errors
    assert Agent.objects.count() == 1


def test_viewers_see_agents_but_cannot_change_them(bob_client, acme):
    agent = make_agent(acme)
    assert bob_client.get(reverse("transfers:agents")).status_code == 200
    assert bob_client.post(reverse("transfers:agent_create"), AGENT).status_code == 403
    assert bob_client.post(reverse("transfers:agent_delete", args=[agent.pk])).status_code == 403
    assert Agent.objects.count() == 1


def test_operators_may_edit(bob, bob_client, acme):
    Membership.objects.filter(user=bob).update(role=Role.OPERATOR)
    assert bob_client.post(reverse("transfers:agent_create"), AGENT).status_code == 302


def test_another_workspace_sees_nothing(charlie_client, acme, globex):
    agent = make_agent(acme)
    group = make_group(acme, agent)
    assert "Ravi" not in charlie_client.get(reverse("transfers:agents")).content.decode()
    for name, args in [("agent_edit", [agent.pk]), ("agent_delete", [agent.pk]), ("group_edit", [group.pk]),
                       ("group_delete", [group.pk])]:
        assert charlie_client.post(reverse(f"transfers:{name}", args=args), {}).status_code == 404
    # Nor can charlie put acme's agent in a group of globex.
    response = charlie_client.post(reverse("transfers:group_create"),
                                   {"name": "Mine", "ring_seconds": 20, "agent_1": agent.pk})
    assert response.status_code == 200 and "agent_1" in response.context["form"].errors
    assert AgentGroup.objects.filter(workspace=globex).count() == 0


def test_a_group_keeps_its_agents_in_ring_order(alice_client, acme):
    ravi, meena, arun = make_agent(acme), make_agent(acme, "Meena", "+919876500001"), make_agent(acme, "Arun", "+919876500002")
    data = {"name": "Sales", "ring_seconds": 15, "agent_1": meena.pk, "agent_3": ravi.pk, "agent_2": arun.pk}
    assert alice_client.post(reverse("transfers:group_create"), data).status_code == 302
    group = AgentGroup.objects.get(workspace=acme)
    assert group.ordered_agents() == [meena, arun, ravi] and group.ring_seconds == 15
    page = alice_client.get(reverse("transfers:group_edit", args=[group.pk])).content.decode()
    assert f'<option value="{meena.pk}" selected>' in page
    # Editing reorders; removing an agent closes the gap.
    alice_client.post(reverse("transfers:group_edit", args=[group.pk]), {**data, "agent_1": ravi.pk, "agent_3": meena.pk})
    assert group.ordered_agents() == [ravi, arun, meena]
    alice_client.post(reverse("transfers:agent_delete", args=[arun.pk]))
    assert group.ordered_agents() == [ravi, meena]


@pytest.mark.parametrize("bad", [{"agent_1": "", "agent_2": ""}, {"agent_2": "same"}, {"ring_seconds": 2}, {"ring_seconds": 500}])
def test_a_group_needs_distinct_agents_and_a_sane_ring_time(alice_client, acme, bad):
    ravi = make_agent(acme)
    data = {"name": "Sales", "ring_seconds": 20, "agent_1": ravi.pk, **bad}
    if data.get("agent_2") == "same":
        data["agent_2"] = ravi.pk
    response = alice_client.post(reverse("transfers:group_create"), data)
    assert response.status_code == 200 and response.context["form"].errors
    assert not AgentGroup.objects.exists()


def test_a_group_a_campaign_uses_is_kept(alice_client, acme):
    group = make_group(acme, make_agent(acme))
    make_campaign(acme, connect_mode=Campaign.ConnectMode.LEGS, transfer_group=group)
    page = alice_client.post(reverse("transfers:group_delete", args=[group.pk]), follow=True).content.decode()
    assert "takes the transfers of Renewals" in page and AgentGroup.objects.exists()


def test_voice_ai_campaigns_cannot_take_a_transfer_group(acme):
    group = make_group(acme, make_agent(acme))
    campaign = make_campaign(acme, transfer_group=group)
    with pytest.raises(Exception, match="Choose Legs"):
        campaign.full_clean()
    campaign.connect_mode = Campaign.ConnectMode.LEGS
    campaign.full_clean()


def test_the_campaign_form_offers_only_the_workspaces_groups(alice_client, acme, globex):
    mine = make_group(acme, make_agent(acme))
    theirs = make_group(globex, make_agent(globex, phone="+919876599999"), name="Theirs")
    page = alice_client.get(reverse("campaigns:create")).content.decode()
    assert "Sales" in page and "Theirs" not in page and "Voice AI (direct) has no transfer: use Legs" in page
    assert theirs.pk != mine.pk


@pytest.mark.parametrize(("start", "end", "at", "weekdays", "expected"), [
    ("09:00", "18:00", "2026-12-02 10:00", [3], True),  # a Wednesday, in hours (IST)
    ("09:00", "18:00", "2026-12-02 18:00", [3], False),
    ("09:00", "18:00", "2026-12-02 10:00", [1], False),
    ("22:00", "06:00", "2026-12-03 02:00", [3], True),  # Wednesday's night shift, early Thursday
    ("22:00", "06:00", "2026-12-03 02:00", [4], False),
    ("22:00", "06:00", "2026-12-02 23:00", [3], True),
])
def test_agents_are_on_duty_in_their_hours_in_the_workspace_zone(acme, start, end, at, weekdays, expected):
    agent = make_agent(acme, active_from=datetime.time.fromisoformat(start), active_until=datetime.time.fromisoformat(end),
                       weekdays=weekdays)
    moment = datetime.datetime.fromisoformat(at).replace(tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
    assert agent.on_duty(moment) is expected
    agent.paused = True
    assert agent.on_duty(moment) is False
