"""The script's walk (streams.bots.script_walk): the preview the editor shows, and that a real call
through the bot goes the way the preview said."""

import pytest

from campaigns.models import Call
from streams.bots.script_walk import MAX_STEPS_RUN, Keys, Preview
from streams.models import StreamSession
from tests.conftest import make_call, make_campaign, make_contact
from tests.streams.exotel_side import Exotel

MENU = {"steps": [
    {"say": "greeting-{language}"},
    {"id": "menu", "gather": {"timeout": 2, "max_digits": 2, "into": "choice",
                              "branches": {"12": "yes", "0": "person"}, "no_input": "bye", "default": "menu"}},
    {"id": "yes", "set": {"plan": "gold", "months": 12}}, {"disposition": "interested"}, {"hangup": True},
    {"id": "person", "transfer": {"message": "hold", "whisper": "Wants {plan}"}}, {"say": "sorry"}, {"hangup": True},
    {"id": "bye", "opt_out": True},
]}
CONTACT = {"name": "Asha", "phone": "+919876543210", "language": "hi"}


def walk(spec=MENU, answers=(), prompts=("greeting-hi", "hold"), refusal=""):
    return Preview(spec, contact=CONTACT, answers=list(answers), prompts=set(prompts), transfer_refusal=refusal).run()


def test_it_stops_at_a_gather_until_the_caller_keys():
    result = walk()
    assert [(e["step"], e["text"]) for e in result["trace"]] == [
        (1, "Plays prompt 'greeting-hi'."), (2, "Waits for the caller's keys.")]
    assert result["waiting"] == {"step": 2, "branches": {"12": "yes", "0": "person"}, "max_digits": 2, "terminator": "#"}
    assert result["ended"] == ""


def test_keys_choose_the_branch_and_other_keys_the_default():
    result = walk(answers=["3#", "12"])
    assert [e["step"] for e in result["trace"]] == [1, 2, 2, 3, 4, 5]
    assert result["trace"][1]["text"] == "Keys '3': goes to 'menu'."
    assert result["trace"][2]["text"] == "Keys '12': goes to 'yes'."
    assert result["ended"] == "Hung up." and result["disposition"] == "interested"
    assert result["variables"] == {"choice": "12", "plan": "gold", "months": 12}


def test_keys_a_gather_did_not_take_wait_for_the_next_one():
    result = walk(answers=["312"])  # max 2 keys: "31" (the default), then "2" waits for one more
    assert result["trace"][-1]["text"] == "Waits for the caller's keys." and result["variables"] == {"choice": "31"}
    assert walk(answers=["312", "#"])["variables"] == {"choice": "2"}  # the terminator ends it


def test_no_keys_in_time_takes_no_input_and_an_opt_out_says_how():
    result = walk(answers=[""])
    assert result["trace"][1]["text"] == "No keys in time: goes to 'bye'."
    assert result["trace"][-1]["text"] == "Puts the number on the do-not-call list (by the script)."
    assert result["ended"] == "Past the last step: hangs up." and result["disposition"] == "opted_out"


def test_a_transfer_hands_over_with_the_whisper_or_goes_on_when_refused():
    result = walk(answers=["0"], prompts=("greeting-hi",))
    text = result["trace"][-1]["text"]
    assert text.startswith("Plays nothing: there is no prompt 'hold' (skipped), then hands the caller to a person")
    assert "Caller Asha, +919876543210. Details: choice 0, language hi. Keyed 0." in text
    assert result["ended"] == "Transferred to a person." and result["disposition"] == ""
    refused = walk(answers=["0"], refusal="the campaign names no agent group")
    assert [(e["step"], e["text"]) for e in refused["trace"][-3:]] == [
        (6, "Plays prompt 'hold', then no transfer (the campaign names no agent group): goes on."),
        (7, "Plays nothing: there is no prompt 'sorry' (skipped)."), (8, "Hangs up.")]


def test_a_prompt_needing_a_variable_the_contact_lacks_is_skipped():
    result = Preview(MENU, contact={}, answers=[], prompts={"greeting-hi"}, transfer_refusal="").run()
    assert result["trace"][0]["text"] == "Plays nothing: 'greeting-{language}' needs a variable this contact lacks (skipped)."


def test_a_loop_without_keys_ends_after_the_step_limit():
    result = walk({"steps": [{"id": "a", "pause": 1}, {"goto": "a"}]})
    assert len(result["trace"]) == MAX_STEPS_RUN and result["ended"] == f"Ran {MAX_STEPS_RUN} steps: hangs up."


def test_keys_end_at_the_terminator_or_the_most_digits():
    keys = Keys({"max_digits": 3})
    for key in "12#":
        keys.press(key)
    assert (keys.digits, keys.done) == ("12", True)
    keys = Keys({"max_digits": 2, "terminator": ""})
    keys.press("#")
    assert (keys.digits, keys.done) == ("#", False)


@pytest.fixture
def menu_call(transactional_db, acme):
    campaign = make_campaign(acme, bot_kind="script", bot_settings={**MENU, "steps": MENU["steps"][1:]})
    return make_call(campaign, contact=make_contact(campaign, name="Asha", variables={"language": "hi"}))


async def test_a_call_goes_where_the_preview_said(menu_call):
    answers = ["3#", "12"]
    exotel = Exotel(f"/streams/{menu_call.token}")
    assert await exotel.connect()
    await exotel.start()
    for key in "".join(answers):
        await exotel.dtmf(key)
    assert await exotel.frame() == ("close", 1000)
    await exotel.hang_up()
    session = await StreamSession.objects.aget(call=menu_call)
    preview = walk({"steps": MENU["steps"][1:]}, answers=answers)
    assert (session.disposition, session.variables) == (preview["disposition"], preview["variables"])
    assert (await Call.objects.aget(pk=menu_call.pk)).disposition == "interested"
