"""The suite's settings: the product's own, run as on a laptop.

Keys are generated into var/ (the suite has no secrets to protect) and the Exotel simulator on
loopback may be reached. Set here, before config.settings reads the environment, so that the
processes the end-to-end tests start inherit the same.
"""

import os

os.environ.setdefault("DEV_KEYS", "true")
os.environ.setdefault("OUTBOUND_ALLOW_LOOPBACK", "true")
# The async tests reach the database from many short-lived executor threads whose connections stay
# checked out of the pool until the test ends; 20 (production's default) ran dry in a full run on
# PostgreSQL, and a later handshake then waited on the pool instead of answering.
os.environ.setdefault("DATABASE_POOL_MAX", "80")

from config.settings import *  # noqa: E402, F403
