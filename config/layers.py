"""channels_redis's layer, without its lost messages.

All of a process's channels share one Redis queue, and whichever of their `receive()` calls holds the
layer's lock pops the next message for any of them. When a consumer stops (a browser closed its
page), channels cancels its `receive()`; if that one was popping, a message that reached Redis at
that moment was taken off the queue and then dropped with the cancelled call, though it was meant
for another channel of the process (a supervisor's take-over, a stream's state). channels_redis
4.3.0 has this bug (its issue 366).

Here a cancelled caller stops waiting, but the pop itself goes on, and the next caller to pop that
queue takes it over: the message goes to its channel as an uncancelled pop would have delivered it."""

import asyncio

from channels_redis.core import RedisChannelLayer


class ReliableRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._orphans: dict[str, asyncio.Task] = {}  # queue -> the pop its cancelled caller left

    async def receive_single(self, channel):
        pop = self._orphans.pop(channel, None)
        if pop is None or pop.cancelled() or pop.get_loop() is not asyncio.get_running_loop():  # its loop ended
            pop = asyncio.ensure_future(super().receive_single(channel))
        try:
            return await asyncio.shield(pop)
        except asyncio.CancelledError:
            self._orphans[channel] = pop  # even when done: its message is not delivered yet
            raise
