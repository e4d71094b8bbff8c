"""The suite's settings: the product's own, run as on a laptop.

Keys are generated into var/ (the suite has no secrets to protect) and the Exotel simulator on
loopback may be reached. Set here, before config.settings reads the environment, so that the
processes the end-to-end tests start inherit the same.
"""

import os
import secrets

os.environ.setdefault("DEV_KEYS", "true")
os.environ.setdefault("OUTBOUND_ALLOW_LOOPBACK", "true")
# The async tests reach the database from many short-lived executor threads whose connections stay
# checked out of the pool until the test ends; 20 (production's default) ran dry in a full run on
# PostgreSQL, and a later handshake then waited on the pool instead of answering.
os.environ.setdefault("DATABASE_POOL_MAX", "80")

# A namespace of its own for each test process (each xdist worker), so that runs side by side on one
# Redis database or one var/ folder never share a queue, a channel or a cache key: Celery workers
# started with --purge would drop another run's tasks. The processes a test starts inherit it (they
# import these settings with the same xdist variables, or with NAMESPACE already set).
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["NAMESPACE"] = f"tests-{os.environ['PYTEST_XDIST_TESTRUNUID'][:12]}-{worker}"
else:
    os.environ.setdefault("NAMESPACE", f"tests-{secrets.token_hex(6)}")

from config.settings import *  # noqa: E402, F403

