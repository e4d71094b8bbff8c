"""The campaign form's script: refused on save with the step and what is wrong (a prompt the workspace
lacks, JSON that does not parse), and the preview that walks it as typed."""

import json

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from streams.models import Prompt
from tests.campaigns.test_campaign_views import form_data
from tests.integrations.conftest import key_client
from tests.integrations.test_api import new_campaign
from transfers.models import AgentGroup

pytestmark = pytest.mark.django_db

SCRIPT = {"steps": [
    {"say": "greeting-{language}"},
    {"id": "menu", "gather": {"branches": {"1": "yes", "0": "person"}, "no_input": "bye"}},
    {"id": "yes", "disposition": "interested"}, {"say": "thanks"}, {"hangup": True},
    {"id": "person", "transfer": {"message": "hold", "whisper": "Wants a person"}},
    {"id": "bye", "hangup": True},
]}


@pytest.fixture
def prompts(acme):
    for name in ("greeting-hi", "thanks", "hold"):
        Prompt.objects.create(workspace=acme, name=name, audio=f"prompts/{name}.wav")


def bot_settings_errors(client, campaign, spec_text: str) -> list[str]:
    response = client.post(reverse("campaigns:create"), form_data(campaign, bot_kind="script", bot_settings=spec_text))
    assert response.status_code == 200
    return response.context["form"].errors.get("bot_settings", [])


def test_a_script_naming_only_the_workspaces_prompts_is_saved(alice_client, campaign, prompts):
    response = alice_client.post(reverse("campaigns:create"),
                                 form_data(campaign, bot_kind="script", bot_settings=json.dumps(SCRIPT)))
    assert response.status_code == 302
    assert Campaign.objects.get(name="Spring renewals").bot_settings == SCRIPT


def test_a_script_naming_a_missing_prompt_is_refused_with_the_step_and_the_prompt(
        alice_client, campaign, prompts, globex):
    Prompt.objects.create(workspace=globex, name="thanks-later", audio="prompts/x.wav")  # not acme's
    spec = {"steps": [*SCRIPT["steps"][:3], {"say": "thanks-later"}, *SCRIPT["steps"][4:5],
                      {"id": "person", "transfer": {"message": "hold-{language}"}}, SCRIPT["steps"][6]]}
    assert bot_settings_errors(alice_client, campaign, json.dumps(spec)) == [
        "Script step 4 (say): no prompt of this workspace is named 'thanks-later'.",
        "Script step 6 (transfer message): no prompt of this workspace is named like 'hold-{language}'.",
    ]
    assert not Campaign.objects.filter(name="Spring renewals").exists()


def test_the_api_refuses_a_missing_prompt_as_the_form_does(acme, alice, campaign):
    response = new_campaign(key_client(acme, alice), campaign.account, bot_kind="script",
                            bot_settings={"steps": [{"say": "nowhere"}]})
    assert response.status_code == 422
    assert response.json()["detail"]["bot_settings"] == ["Script step 1 (say): no prompt of this workspace is named 'nowhere'."]


def test_a_relays_missing_fallback_prompt_is_refused(alice_client, campaign):
    data = form_data(campaign, bot_kind="relay", bot_settings='{"url": "wss://bot.example.com/a", "fallback_prompt": "sorry"}')
    errors = alice_client.post(reverse("campaigns:create"), data).context["form"].errors["bot_settings"]
    assert errors == ["Relay fallback: no prompt of this workspace is named 'sorry'."]


@pytest.mark.parametrize("text, message", [
    ('{"steps": [\n  {"say": "thanks"},\n  {"say": "thanks",},\n  {"hangup": true}\n]}',
     'The JSON breaks at line 3, column 20, in step 2: Expecting property name enclosed in double quotes. '
     'The line: {"say": "thanks",},'),
    ("{\"steps\": [{\"say\": 'thanks'}]}",
     "The JSON breaks at line 1, column 20, in step 1: Expecting value. The line: {\"steps\": [{\"say\": 'thanks'}]}"),
    ('{"steps": [{"say": "a \\" quote"}, {"goto" "x"}]}',  # a quote inside a string does not end it
     "The JSON breaks at line 1, column 43, in step 2: Expecting ':' delimiter. "
     'The line: {"steps": [{"say": "a \\" quote"}, {"goto" "x"}]}'),
    ('{"barge_in": {"min_ms": 5,}}',
     'The JSON breaks at line 1, column 27: Expecting property name enclosed in double quotes. '
     'The line: {"barge_in": {"min_ms": 5,}}'),
])
def test_json_that_does_not_parse_is_refused_with_its_line_and_step(alice_client, campaign, text, message):
    assert bot_settings_errors(alice_client, campaign, text) == [message]


def test_a_wrong_step_is_named_by_number_and_id(alice_client, campaign, prompts):
    text = json.dumps({"steps": [{"say": "thanks"}, {"id": "menu", "gather": {"branches": {"1": "nowhere"}}}]})
    assert bot_settings_errors(alice_client, campaign, text) == [
        'Step 2 ("menu"): branch \'1\' goes to \'nowhere\', which no step has as id.']


def test_the_form_offers_the_workspaces_prompts_only(alice_client, campaign, prompts, globex):
    Prompt.objects.create(workspace=globex, name="globex-secret-prompt", audio="prompts/x.wav")
    page = alice_client.get(reverse("campaigns:edit", args=[campaign.pk])).content.decode()
    assert '"greeting-hi"' in page and "globex-secret-prompt" not in page
    assert 'id="script-editor"' in page and "js/script-editor.js" in page


# --- the preview ----------------------------------------------------------------------------------

def preview(client, **fields):
    body = {"script": json.dumps(SCRIPT), "variables": {"language": "hi", "name": "Asha"}, "answers": [],
            "connect_mode": "legs", "transfer_group": "", **fields}
    return client.post(reverse("campaigns:script_preview"), body, content_type="application/json")


def test_the_preview_walks_the_script_as_typed(alice_client, prompts):
    first = preview(alice_client).json()
    assert [e["text"] for e in first["trace"]] == ["Plays prompt 'greeting-hi'.", "Waits for the caller's keys."]
    assert first["waiting"]["step"] == 2 and first["waiting"]["branches"] == {"1": "yes", "0": "person"}
    done = preview(alice_client, answers=["1"]).json()
    assert [e["step"] for e in done["trace"]] == [1, 2, 3, 4, 5]
    assert (done["ended"], done["disposition"], done["warnings"]) == ("Hung up.", "interested", [])


def test_the_preview_transfers_only_where_the_campaign_could(alice_client, acme, globex, prompts):
    group = AgentGroup.objects.create(workspace=acme, name="Desk")
    theirs = AgentGroup.objects.create(workspace=globex, name="Globex desk")
    handed = preview(alice_client, answers=["0"], transfer_group=str(group.pk)).json()
    assert handed["ended"] == "Transferred to a person."
    assert "the agent hears: 'Caller Asha" in handed["trace"][-1]["text"]
    for mode, group_id, reason in [("voice_ai", group.pk, "Voice AI (direct) calls have no transfer"),
                                   ("legs", theirs.pk, "the campaign names no agent group")]:
        refused = preview(alice_client, answers=["0"], connect_mode=mode, transfer_group=group_id).json()
        assert f"no transfer ({reason}): goes on." in refused["trace"][-2]["text"]


def test_the_preview_warns_of_what_saving_would_refuse(alice_client, prompts):
    script = json.dumps({"steps": [{"say": "greting"}, {"hangup": True}]})
    result = preview(alice_client, script=script).json()
    assert result["trace"][0]["text"] == "Plays nothing: there is no prompt 'greting' (skipped)."
    assert result["warnings"] == ["Script step 1 (say): no prompt of this workspace is named 'greting'."]


@pytest.mark.parametrize("fields, message", [
    ({"script": '{"steps": [}'}, "The JSON breaks at line 1, column 12, in step 1: Expecting value."),
    ({"script": '{"steps": [{"goto": "x"}]}'}, "Step 1: goto 'x', which no step has as id."),
    ({"answers": ["1a"]}, "The caller's answers are at most 100 texts of keys (0-9, * and #)."),
    ({"variables": ["a"]}, "The contact's variables are at most 50 names with text values."),
    ({"connect_mode": "pigeon"}, "'pigeon' is not a way calls connect."),
    ({"transfer_group": "1 OR 1=1"}, "The agent group is given by its id."),
])
def test_the_preview_says_what_is_wrong(alice_client, fields, message):
    response = preview(alice_client, **fields)
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith(message)


def test_the_preview_needs_json_and_an_operator(alice_client, bob_client):
    response = alice_client.post(reverse("campaigns:script_preview"), {"script": "{}"})
    assert response.status_code == 400 and response.json() == {"errors": ["The request must be a JSON object."]}
    assert preview(bob_client).status_code == 403
    assert alice_client.get(reverse("campaigns:script_preview")).status_code == 405
