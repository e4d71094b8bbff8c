"""The prompt cache holds the most recently used audio, bounded by bytes rather than by count."""

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
