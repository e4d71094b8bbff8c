"""A/B tests: contacts split between a campaign's variants by weight, each contact keeping its variant,
each call running and recording its variant's bot; the campaign page's figures; the variants' pages."""

import datetime

import pytest

from campaigns import calls, experiments, stats
from campaigns.models import Call, Contact, Variant
from streams import services as stream_services
from tests.campaigns.test_dispatcher import NOON_FRIDAY, start, tick
from tests.conftest import make_call, make_contact

pytestmark = pytest.mark.django_db
SCRIPT = {"steps": [{"disposition": "interested"}, {"hangup": True}]}


def add_variants(campaign, *weights):
    return [Variant.objects.create(workspace=campaign.workspace, campaign=campaign, name=name, weight=weight,
                                   bot_kind="script", bot_settings={"steps": [{"disposition": name}]},
                                   greeting_text=f"Hello from {name}")
            for name, weight in zip("ABC", weights, strict=False)]


def test_each_contact_gets_a_variant_by_weight_and_its_calls_record_it(campaign, alice, sent,
                                                                       django_capture_on_commit_callbacks):
    a, b = add_variants(campaign, 1, 3)
    start(campaign, alice, contacts=40, calls_per_minute=6000, max_concurrent=100, pace_credit=40,
          paced_at=NOON_FRIDAY)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    placed = list(Call.objects.select_related("contact"))
    assert len(placed) == 40
    weights = [(a.pk, 1), (b.pk, 3)]
    for call in placed:
        assert call.variant_id == call.contact.variant_id == experiments.choose_variant(
            f"{campaign.pk}:{call.contact_id}", weights)
    assert {call.variant_id for call in placed} == {a.pk, b.pk}


def test_a_retry_keeps_its_contacts_variant_whatever_the_weights_became(campaign, alice, sent,
                                                                        django_capture_on_commit_callbacks):
    a, b = add_variants(campaign, 1, 1)
    start(campaign, alice, contacts=6, max_attempts=2, retry_after_minutes=0, calls_per_minute=6000,
          max_concurrent=100, pace_credit=6, paced_at=NOON_FRIDAY)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    first = {call.contact_id: call.variant_id for call in Call.objects.all()}
    Call.objects.update(state=Call.State.RINGING)
    for call in Call.objects.all():
        assert calls.advance(call, Call.State.BUSY, at=NOON_FRIDAY)
    Variant.objects.filter(pk=a.pk).update(weight=1000)  # new contacts would nearly all get A now
    tick(NOON_FRIDAY + datetime.timedelta(minutes=1), django_capture_on_commit_callbacks)
    retries = Call.objects.filter(attempt=2)
    assert retries.count() == 6
    assert {call.contact_id: call.variant_id for call in retries} == first
    assert set(first.values()) == {a.pk, b.pk}


def test_a_campaign_without_variants_runs_its_own_bot(campaign, alice, sent, django_capture_on_commit_callbacks):
    start(campaign, alice, contacts=2, calls_per_minute=6000, pace_credit=2, paced_at=NOON_FRIDAY)
    tick(NOON_FRIDAY, django_capture_on_commit_callbacks)
    assert list(Call.objects.values_list("variant", flat=True)) == [None, None]
    assert not Contact.objects.filter(variant__isnull=False).exists()


def test_the_stream_runs_the_calls_variant(campaign):
    (a,) = add_variants(campaign, 1)
    call = make_call(campaign, variant=a)
    binding = stream_services.bind_call(call.token, receive_only=False, authorization=None)
    assert (binding.bot_kind, binding.bot_settings) == ("script", {"steps": [{"disposition": "A"}]})
    plain = make_call(campaign)
    assert stream_services.bind_call(plain.token, receive_only=False, authorization=None).bot_kind == "echo"


def ended(campaign, variant, n, *, answered, disposition="", first_audio_ms=None):
    for _ in range(n):
        make_call(campaign, variant=variant, state=Call.State.COMPLETED if answered else Call.State.NO_ANSWER,
                  answered_at=NOON_FRIDAY if answered else None, disposition=disposition,
                  first_audio_ms=first_audio_ms)


def test_the_figures_count_each_variants_calls_with_intervals_and_tests(campaign):
    a, b = add_variants(campaign, 1, 1)
    ended(campaign, a, 20, answered=True, disposition="interested", first_audio_ms=400)
    ended(campaign, a, 20, answered=True, first_audio_ms=800)
    ended(campaign, a, 60, answered=False)
    ended(campaign, b, 45, answered=True, disposition="interested", first_audio_ms=1200)
    ended(campaign, b, 55, answered=False)
    make_call(campaign, variant=b, state=Call.State.IN_PROGRESS, answered_at=NOON_FRIDAY)  # not ended: not counted
    make_call(campaign, state=Call.State.COMPLETED, first_audio_ms=3000)  # no variant: the campaign's own bot

    figures = experiments.figures(campaign)
    control, arm = figures.arms
    assert (control.variant, arm.variant) == (a, b) and control.share == arm.share == 50
    assert control.answer == stats.rate(40, 100) and arm.answer == stats.rate(45, 100)
    assert figures.dispositions == ["interested"]
    assert control.dispositions["interested"] == stats.rate(20, 40) and arm.dispositions["interested"] == stats.rate(45, 45)
    assert arm.answer_test == stats.two_proportion_test(45, 100, 40, 100)
    assert not arm.answer_test.significant  # 45% against 40%
    assert arm.disposition_tests["interested"].significant  # every answered call of B against half of A's
    assert (control.first_audio.calls, control.first_audio.p50, control.first_audio.p90) == (40, 400, 800)
    assert (arm.first_audio.p50, arm.first_audio.p99) == (1200, 1200)
    assert (figures.first_audio.calls, figures.first_audio.p99) == (86, 3000)
    assert [n for _, n, _ in figures.first_audio.bins] == [0, 20, 20, 45, 1, 0]


def test_three_variants_share_the_level_between_their_comparisons(campaign):
    add_variants(campaign, 1, 1, 1)
    figures = experiments.figures(campaign)
    assert figures.alpha == pytest.approx(0.025)
    assert all(arm.answer.trials == 0 for arm in figures.arms) and figures.first_audio.p50 is None


def test_an_operator_adds_a_variant_starting_from_the_campaigns_bot(alice_client, campaign):
    campaign.bot_kind, campaign.bot_settings, campaign.greeting_text = "script", SCRIPT, "Namaste"
    campaign.save()
    page = alice_client.get(f"/campaigns/{campaign.pk}/variants/new/")
    assert page.status_code == 200 and "Namaste" in page.content.decode()
    response = alice_client.post(f"/campaigns/{campaign.pk}/variants/new/", {
        "name": "Short greeting", "weight": 2, "greeting_text": "Hi", "bot_kind": "script",
        "bot_settings": '{"steps": [{"hangup": true}]}'})
    assert response.status_code == 302
    variant = Variant.objects.get(campaign=campaign)
    assert (variant.workspace_id, variant.name, variant.weight, variant.bot_settings) == (
        campaign.workspace_id, "Short greeting", 2, {"steps": [{"hangup": True}]})


@pytest.mark.parametrize("fields, error", [
    ({"bot_settings": '{"steps": [{"dance": 1}]}'}, "bot_settings"),
    ({"bot_settings": "[1, 2]"}, "bot_settings"),
    ({"weight": 0}, "weight"),
    ({"name": "a"}, "name"),  # A exists already, whatever the case
])
def test_a_bad_variant_is_refused_with_the_field_named(alice_client, campaign, fields, error):
    add_variants(campaign, 1)
    data = {"name": "B", "weight": 1, "bot_kind": "script", "bot_settings": '{"steps": [{"hangup": true}]}', **fields}
    response = alice_client.post(f"/campaigns/{campaign.pk}/variants/new/", data)
    assert response.status_code == 200 and error in response.context["form"].errors
    assert Variant.objects.count() == 1


def test_a_variant_with_calls_is_kept_and_one_without_is_deleted(alice_client, campaign):
    a, b = add_variants(campaign, 1, 1)
    make_call(campaign, variant=a)
    alice_client.post(f"/campaigns/{campaign.pk}/variants/{a.pk}/delete/")
    alice_client.post(f"/campaigns/{campaign.pk}/variants/{b.pk}/delete/")
    assert list(Variant.objects.all()) == [a]
    campaign.delete()  # with its calls and variants
    assert not Variant.objects.exists()


def test_the_campaign_page_shows_each_variants_rates(bob_client, campaign):
    a, b = add_variants(campaign, 1, 1)
    ended(campaign, a, 3, answered=True, disposition="interested")
    ended(campaign, b, 1, answered=False)
    assert 'id="experiment"' in bob_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    html = bob_client.get(f"/campaigns/{campaign.pk}/experiment/").content.decode()
    assert stats.rate(3, 3).label in html and stats.rate(0, 1).label in html
    assert "B against A" in html and "too few calls to tell" in html
    assert "Add a variant" not in html  # a viewer changes nothing


def test_viewers_and_other_workspaces_change_no_variant(bob_client, charlie_client, campaign):
    (a,) = add_variants(campaign, 1)
    assert bob_client.post(f"/campaigns/{campaign.pk}/variants/new/", {"name": "B", "weight": 1}).status_code == 403
    assert bob_client.post(f"/campaigns/{campaign.pk}/variants/{a.pk}/delete/").status_code == 403
    for url in [f"/campaigns/{campaign.pk}/experiment/", f"/campaigns/{campaign.pk}/variants/new/",
                f"/campaigns/{campaign.pk}/variants/{a.pk}/edit/", f"/campaigns/{campaign.pk}/variants/{a.pk}/delete/"]:
        assert charlie_client.post(url, {"name": "Mine", "weight": 5}).status_code == 404
        assert charlie_client.get(url).status_code in (404, 405)
    assert list(Variant.objects.values_list("name", "weight")) == [("A", 1)]


def test_a_first_assignment_is_stored_on_the_contact(campaign):
    (a,) = add_variants(campaign, 1)
    contact = make_contact(campaign)
    assert experiments.assign(campaign, [contact]) == {contact.pk: a.pk}
    assert Contact.objects.get(pk=contact.pk).variant_id == a.pk
