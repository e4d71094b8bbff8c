"""The suite's settings: the product's own, run as on a laptop.

Keys are generated into var/ (the suite has no secrets to protect) and the Exotel simulator on
loopback may be reached. Set here, before config.settings reads the environment, so that the
processes the end-to-end tests start inherit the same.
"""

import os
import secrets
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DEV_KEYS", "true")
os.environ.setdefault("OUTBOUND_ALLOW_LOOPBACK", "true")
# A namespace of its own for each test process (each xdist worker), so that runs side by side on one
# Redis database or one var/ folder never share a queue, a channel or a cache key: Celery workers
# started with --purge would drop another run's tasks. The processes a test starts inherit it (they
# import these settings with the same xdist variables, or with NAMESPACE already set).
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["NAMESPACE"] = f"tests-{os.environ['PYTEST_XDIST_TESTRUNUID'][:12]}-{worker}"
else:
    os.environ.setdefault("NAMESPACE", f"tests-{secrets.token_hex(6)}")

# The namespace does not reach the Celery broker's keys (config/settings.py), so each xdist worker also
# gets a Redis database of its own: REDIS_URL's number plus the worker's (gw0 +0, gw1 +1, ...). Derived
# once, in the test process; the processes it starts inherit the result.
if worker and os.environ.get("REDIS_URL") and not os.environ.get("TESTS_REDIS_DERIVED"):
    url = urlsplit(os.environ["REDIS_URL"])
    number = int(url.path.strip("/") or 0) + int(worker.removeprefix("gw"))
    if number > 15:
        raise ImproperlyConfigured(f"xdist worker {worker} would use Redis database {number}: "
                                   "start from a lower REDIS_URL database or run fewer workers")
    os.environ["REDIS_URL"] = urlunsplit(url._replace(path=f"/{number}"))
    os.environ["TESTS_REDIS_DERIVED"] = "1"

# The async tests reach the database from many short-lived executor threads whose connections stay
# checked out of the pool until the test ends; 20 (production's default) ran dry in a full run on
# PostgreSQL, and a later handshake then waited on the pool instead of answering. An xdist worker runs
# a share of the tests, and PostgreSQL's max_connections (100 by default) is shared by every worker and
# the processes its tests start, each with a pool of its own that opens one connection and grows only
# as it is used: measured in a 4-worker run, a worker's peak was 19 (the scale-out test's dozen
# processes) and a test process's 3, so 20 at most per process leaves room to spare. Unless the
# environment gives one: xdist's controller imports these settings too (as no worker) and its workers
# inherit its environment, where its own 80 must not pass for a given figure.
if "DATABASE_POOL_MAX" not in os.environ or os.environ.get("TESTS_POOL_DEFAULT"):
    os.environ.update(DATABASE_POOL_MAX="20" if worker else "80", TESTS_POOL_DEFAULT="1")
if worker:
    os.environ.setdefault("DATABASE_POOL_MIN", "1")

from config.settings import *  # noqa: E402, F403

