"""Secrets kept out of logs: the token in a webhook path (/hooks/<token>/…) lets anyone forge call
outcomes, and a call's token (/streams/<token>, `?call=<token>`, Passthru's `streamurl`) lets anyone
join its stream (a test call's, /streams/test-call/<token>, its campaign's bot). Webhook paths lose
their token and their whole query (the raw delivery is stored in the database for audit); stream
paths lose their token.

`RedactTokens` filters every record our log handlers write (Django's request log included);
`config.server` runs daphne with the same redaction in its access log.
"""

import logging
import re

REDACTED = "[redacted]"
HOOK = re.compile(r"/hooks/[^/?#\s\"]+(?P<route>/[^?#\s\"]*)?(?P<query>\?[^#\s\"]*)?")
STREAM = re.compile(r"(?P<prefix>/streams/(?:test/|test-call/)?)(?!recordings/)[^/?#\s\"]+")


def _hook(found: re.Match) -> str:
    return f"/hooks/{REDACTED}{found['route'] or ''}{f'?{REDACTED}' if found['query'] else ''}"


def redact(text: str) -> str:
    return STREAM.sub(rf"\g<prefix>{REDACTED}", HOOK.sub(_hook, text))


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
