"""Prompts: the cache holds the most recently used audio, bounded by bytes rather than by count; a bot's
settings may name only prompts its workspace has."""

import pytest
from django.core.exceptions import ValidationError

from streams import prompts
from streams.models import Prompt
from streams.prompts import PcmCache


def test_it_keeps_the_most_recent_prompts_within_its_bytes():
    cache, loads = PcmCache(max_bytes=1000), []

    def load(size: int):
        def read() -> bytes:
            loads.append(size)
            return bytes(size)

        return read

    cache.get(("a.wav", 8000), load(400))
    cache.get(("b.wav", 8000), load(400))
    cache.get(("a.wav", 8000), load(400))  # a hit: "a" is now the most recent
    cache.get(("c.wav", 8000), load(400))  # 1200 bytes: "b", the least recent, goes
    assert cache.bytes == 800 and loads == [400, 400, 400]
    cache.get(("a.wav", 8000), load(400))
    cache.get(("b.wav", 8000), load(400))
    assert loads == [400, 400, 400, 400]  # only "b" was read again


def test_a_prompt_larger_than_the_cache_is_served_but_not_kept():
    cache = PcmCache(max_bytes=1000)
    cache.get(("a.wav", 8000), lambda: bytes(400))
    assert len(cache.get(("huge.wav", 8000), lambda: bytes(5000))) == 5000
    assert cache.bytes == 400


@pytest.fixture
def greetings(acme, globex):
    for name in ("greeting-hi", "greeting-en", "menu"):
        Prompt.objects.create(workspace=acme, name=name, audio=f"prompts/{name}.wav")
    Prompt.objects.create(workspace=globex, name="thanks", audio="prompts/thanks.wav")


def test_a_name_no_prompt_of_the_workspace_has_is_refused_with_its_place(acme, greetings):
    prompts.check_named(acme.pk, [("menu", "script step 1 (say)"), ("greeting-{language}", "script step 2 (say)")])
    with pytest.raises(ValidationError) as refused:
        prompts.check_named(acme.pk, [("menu", "script step 1 (say)"), ("thanks", "script step 3 (say)"),
                                      ("bye-{language}", "script step 4 (transfer message)")])
    # Another workspace's "thanks" is not this one's.
    assert refused.value.messages == [
        "Script step 3 (say): no prompt of this workspace is named 'thanks'.",
        "Script step 4 (transfer message): no prompt of this workspace is named like 'bye-{language}'.",
    ]
