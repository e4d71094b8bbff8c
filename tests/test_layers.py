"""The Redis channel layer keeps a message that was popped for a receive() cancelled at that moment
(config.layers): it reaches the channel it was sent to."""

import asyncio
import shutil
import threading
import time

import pytest
import redis

from config.layers import ReliableRedisChannelLayer
from tests import processes

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs a redis-server of its own")


@pytest.fixture
def redis_url(tmp_path):
    server = processes.start_redis(tmp_path)
    yield server.url
    server.stop()


def send_while_the_loop_waits(redis_url: str, channel: str, message: dict) -> None:
    """Send from another layer on another thread, blocking this loop: no coroutine of it runs meanwhile."""
    sender = threading.Thread(target=lambda: asyncio.run(ReliableRedisChannelLayer(hosts=[redis_url]).send(channel, message)))
    sender.start()
    sender.join()


async def test_a_message_popped_by_a_cancelled_receive_reaches_its_channel(redis_url):
    layer = ReliableRedisChannelLayer(hosts=[redis_url])
    client = redis.Redis.from_url(redis_url)
    ann, bob = await layer.new_channel(), await layer.new_channel()
    ann_receives = asyncio.ensure_future(layer.receive(ann))  # first in: it pops for the whole process
    async with asyncio.timeout(10):
        while not any(c.get("cmd") == "bzpopmin" for c in client.client_list()):
            await asyncio.sleep(0.01)
    bob_receives = asyncio.ensure_future(layer.receive(bob))
    await asyncio.sleep(0.05)  # bob waits for the lock or for his buffer

    send_while_the_loop_waits(redis_url, bob, {"type": "take.over"})
    queue = layer.prefix + layer.non_local_name(bob)
    deadline = time.monotonic() + 10
    while client.zcard(queue) and time.monotonic() < deadline:  # till Redis hands it to ann's pop...
        time.sleep(0.001)
    assert not client.zcard(queue)  # ...while her coroutine, on this waiting loop, has not run
    ann_receives.cancel()  # ann's page closed

    assert (await asyncio.wait_for(bob_receives, 10)) == {"type": "take.over"}
    client.close()
