"""The stream server (daphne) publishes its heartbeat from the moment it runs, before any request, and
withdraws it when it stops; a web process (gunicorn) never beats."""

import sys

import httpx
import pytest

from streams import heartbeat
from streams.models import StreamServer
from tests import processes

pytestmark = pytest.mark.e2e


def test_daphne_beats_from_its_start_and_withdraws_its_beat_when_it_stops(transactional_db, tmp_path):
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
    assert daphne.process.returncode == 0
    assert not StreamServer.objects.exists()  # withdrawn on SIGTERM: the dispatcher holds at once


def test_a_web_process_serves_pages_and_never_beats(transactional_db, tmp_path):
    web = processes.start_web(tmp_path, public_base_url="http://127.0.0.1", workers=1)
    try:
        assert httpx.get(f"{web.url}/login/").status_code == 200
        with pytest.raises(TimeoutError):
            processes.wait_until(heartbeat.healthy, timeout=2, what="a heartbeat")
    finally:
        web.stop()
