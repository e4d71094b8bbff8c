"""The real web server (daphne) publishes its stream-server heartbeat from the moment it runs, before any request."""

import sys

import pytest

from streams import heartbeat
from streams.models import StreamServer
from tests import processes

pytestmark = pytest.mark.e2e


def test_daphne_beats_from_its_start_and_the_beat_stops_with_it(transactional_db, tmp_path):
    port = processes.free_port()
    argv = [sys.executable, "-m", "config.server", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    env = processes.environment(f"http://127.0.0.1:{port}", STREAM_HEARTBEAT_SECONDS="0.2")
    daphne = processes._start("daphne", argv, env=env, log_dir=tmp_path)
    try:
        processes.wait_until(heartbeat.healthy, timeout=30, what="daphne's first heartbeat")
        [server] = StreamServer.objects.all()
        assert server.name.endswith(f":{daphne.process.pid}")
    finally:
        daphne.stop()
    seen = StreamServer.objects.get().seen_at
    with pytest.raises(TimeoutError):  # no beat after the process ended
        processes.wait_until(lambda: StreamServer.objects.get().seen_at > seen, timeout=1, what="another beat")
