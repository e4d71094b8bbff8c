#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if sys.argv[1:2] == ["demo"]:
        # The demo runs on a fresh laptop with nothing set: its keys are generated into var/ once,
        # and its Exotel is the simulator on loopback. Its child processes inherit both.
        os.environ.setdefault("DEV_KEYS", "true")
        os.environ.setdefault("OUTBOUND_ALLOW_LOOPBACK", "true")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
