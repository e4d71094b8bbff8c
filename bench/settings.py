"""Settings of the daphne that bench/webhooks.py starts: the product's, with the baseline view beside it."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
