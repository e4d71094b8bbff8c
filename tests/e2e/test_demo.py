"""`python manage.py demo` as a newcomer runs it, with nothing set: it comes up, keeps its processes
running through a crash, runs its campaign to the end and stops everything it started.

The 30-minute soak is a documented command (README), not part of the suite.
"""

import os
import re
import signal
import subprocess
import sys

import pytest

from campaigns.management.commands import demo
from tests import processes
from tests.e2e.test_processes import sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def running_demo(tmp_path):
    """The demo on free ports with the embedded defaults (SQLite, the file queue) in a folder of its own."""
    port, simulator_port = processes.free_port(), processes.free_port()
    env = {name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")}
    env.update(VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1")
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--port", str(port), "--simulator-port", str(simulator_port)],
            cwd=processes.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    yield process, log
    if process.poll() is None:
        process.kill()
        process.wait()


def started(log) -> dict[str, list[int]]:
    """Process ids the demo logged as started, by name, in order."""
    pids: dict[str, list[int]] = {}
    for name, pid in re.findall(r"demo: (\w+) started \(pid (\d+)\)", log.read_text()):
        pids.setdefault(name, []).append(int(pid))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_demo_restarts_a_crashed_worker_and_runs_its_campaign_to_the_end(running_demo):
    process, log = running_demo
    # Killed while it boots, before it can hold a call (one killed mid-dial leaves that call
    # `unknown` for its time limit: the reaper's rule, tested on its own).
    [worker] = processes.wait_until(lambda: started(log).get("worker"), timeout=120, what="the worker to start")
    os.killpg(worker, signal.SIGKILL)  # the worker and its pool, as a crash would leave them
    processes.wait_until(lambda: len(started(log)["worker"]) == 2, timeout=30, what="the worker to be restarted")
    found = processes.wait_until(lambda: re.search(r"Demo campaign: (http://[^/]+)(\S+)", log.read_text()),
                                 timeout=120, what="the demo to print its address")
    base_url, campaign_path = found.groups()
    client = sign_in(base_url, demo.EMAIL, demo.PASSWORD)  # printed only once the web server answers

    def finished():
        counters = client.get(f"{campaign_path}counters.json").json()
        return counters if counters["state"] == "completed" else None

    counters = processes.wait_until(finished, timeout=300, what="the demo campaign to complete", interval=2)
    client.close()
    assert (counters["contacts_done"], counters["calls_live"]) == (len(demo.CONTACTS), 0)
    assert "exited with code" in log.read_text()

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    assert not [pid for pids in started(log).values() for pid in pids if alive(pid)]
