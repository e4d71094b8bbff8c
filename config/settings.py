"""Settings: every value comes from the environment, with a default that runs on a laptop (the
secrets excepted: a laptop generates its own, production must give them).

With no DATABASE_URL the data lives in a SQLite file; with no REDIS_URL Celery uses kombu's
filesystem transport and Channels its in-memory layer, so one machine needs nothing installed.
Production differs only in its environment.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from config import devkeys

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Runtime state of the embedded defaults: the SQLite file, the filesystem queue, media.
VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)
# Secrets come only from the environment: no default is written here, none is derived from another.
# FIELD_ENCRYPTION_KEYS is comma-separated; the first encrypts, all decrypt, so keys can rotate.
SECRET_KEY = env("SECRET_KEY", default="")
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not (SECRET_KEY and FIELD_ENCRYPTION_KEYS):
    # A laptop (DEBUG, or DEV_KEYS: the demo, the tests) uses keys generated once into VAR_DIR.
    if not env.bool("DEV_KEYS", default=DEBUG):
        raise ImproperlyConfigured("Set SECRET_KEY and FIELD_ENCRYPTION_KEYS (see README, Configuration).")
    _generated = devkeys.dev_keys(VAR_DIR)
    SECRET_KEY = SECRET_KEY or _generated["SECRET_KEY"]
    FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or _generated["FIELD_ENCRYPTION_KEYS"].split(",")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

# The externally reachable base (https://…) from which stream (wss://…) and webhook URLs are built.
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[PUBLIC_BASE_URL])

# Outbound requests to URLs a tenant typed (tenancy/weburls.py): an account's API base URL must name
# one of these hosts (fnmatch patterns; Exotel's documented API hosts), and no URL may reach a
# private, loopback or link-local address, except loopback when it is allowed (the simulator).
EXOTEL_API_HOSTS = env.list("EXOTEL_API_HOSTS", default=[
    "api.in.exotel.com", "api.exotel.com", "cpaas-api.in.exotel.com", "cpaas-api.exotel.com",
])
OUTBOUND_ALLOW_LOOPBACK = env.bool("OUTBOUND_ALLOW_LOOPBACK", default=DEBUG)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "tenancy",
    "campaigns",
    "streams",
    "callbacks",
    "transfers",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",  # daphne serves no static files itself; async, unlike WhiteNoise
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tenancy.access.WorkspaceMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers a locked-out sign-in
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenancy.access.workspace_context",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under daphne every request would otherwise hold its own persistent connection and exhaust
    # the server's slots (DESIGN.md, measured); a pool with CONN_MAX_AGE = 0 doubles throughput.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=2),
        "max_size": env.int("DATABASE_POOL_MAX", default=20),
        "timeout": 10,
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Concurrent writers (web, worker, beat) wait for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    # A file, not memory, so end-to-end tests' daphne and worker processes see the test data;
    # one per test run, so that runs side by side do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="")
# Installations (or test runs) that share one Redis database or one VAR_DIR keep apart by namespace:
# it prefixes Redis keys (results, channel layer, cache; not the broker's, below) and names the file queue's folder.
NAMESPACE = env("NAMESPACE", default="")
_KEY_PREFIX = f"{NAMESPACE}:" if NAMESPACE else ""
if REDIS_URL:
    # channels_redis's own, but a message popped for a cancelled receive() is kept (config/layers.py)
    CHANNEL_LAYERS = {"default": {"BACKEND": "config.layers.ReliableRedisChannelLayer",
                                  "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{_KEY_PREFIX}asgi"}}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": _KEY_PREFIX}
    # An unacknowledged message (its worker died) comes back after this long. Redis's default hour,
    # kept: a delayed retry (Retry-After) waits unacknowledged in a worker and must not come back
    # early, and a lost place_call needs no redelivery (the reaper resends it from its row).
    # Not the broker's keys: with kombu's prefixed client a worker died while Redis came back (an
    # acknowledgement found no connection: 'NoneType' object has no attribute 'hostname').
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    # Shared by every process: the live view's watcher counts (streams.live) live here. A Redis that
    # hangs instead of refusing must not hold a live stream that asks it for long.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": NAMESPACE, "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # kombu's filesystem transport lets web, worker and beat on one machine share a queue; ours
    # writes each message atomically (config/filequeue.py), so no reader sees half of one.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "config.filequeue:Transport"
    _queue, _control = VAR_DIR / "queue" / NAMESPACE, VAR_DIR / "queue-control" / NAMESPACE
    for _folder in (_queue, _control):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "control_folder": str(_control),
        # The default 1 s poll would add up to a second to every call placed and every tick.
        "polling_interval": 0.1,
    }
    CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Every task is idempotent in its row (a place_call delivered twice dials once), so a message is
# acknowledged only when its task has run, and a pool process killed mid-task puts it back.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A broker restart is a pause, not an end: workers and beat reconnect for as long as it takes,
# from startup on. A task running when the connection drops finishes (its outcome is in the
# database); its acknowledgement is lost, and the redelivered message finds nothing left to do.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Three queues, so that no kind of work waits behind another: the dispatcher's tick, placing calls,
# and everything else. A worker started without -Q consumes all three (the demo, the tests);
# production runs a worker per queue (docker-compose.yml).
CELERY_TASK_QUEUES = {"tick": {}, "dial": {}, "default": {}}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"campaigns.tasks.dispatch": {"queue": "tick"}, "campaigns.tasks.place_call": {"queue": "dial"},
                      "campaigns.tasks.place_calls": {"queue": "dial"}}
# No task runs for ever; tasks that talk to Exotel set their own, tighter limits (campaigns/tasks.py).
CELERY_TASK_SOFT_TIME_LIMIT = 120
CELERY_TASK_TIME_LIMIT = 150
# The dispatcher's tick; a tick that waited past the next one is dropped, never run late in a pile.
DISPATCH_SECONDS = env.float("DISPATCH_SECONDS", default=2.0)
CELERY_BEAT_SCHEDULE = {
    "dispatch": {"task": "campaigns.tasks.dispatch", "schedule": DISPATCH_SECONDS,
                 "options": {"expires": DISPATCH_SECONDS * 2}},
    "reap-calls": {"task": "campaigns.tasks.reap_calls", "schedule": env.float("REAP_SECONDS", default=30.0),
                   "options": {"expires": 60}},
    "forget-uploads": {"task": "campaigns.tasks.forget_stale_uploads", "schedule": 3600.0,
                       "options": {"expires": 3600}},
    "resume-dnc-imports": {"task": "campaigns.tasks.resume_stalled_dnc_imports", "schedule": 120.0,
                           "options": {"expires": 120}},
    # Each account's ActiveStreams in a task of its own, outside the tick (campaigns/accounts.py).
    "read-capacity": {"task": "campaigns.tasks.read_capacities", "schedule": 5.0, "options": {"expires": 10}},
    "reconcile-calls": {"task": "campaigns.tasks.reconcile_calls",
                        "schedule": env.float("RECONCILE_SECONDS", default=30.0), "options": {"expires": 60}},
    "recount-live-calls": {"task": "campaigns.tasks.recount_live_calls",
                           "schedule": env.float("RECOUNT_SECONDS", default=60.0), "options": {"expires": 120}},
    "price-calls": {"task": "campaigns.tasks.price_calls", "schedule": env.float("PRICE_SWEEP_SECONDS", default=30.0),
                    "options": {"expires": 60}},
    "sweep-webhooks": {"task": "integrations.tasks.sweep_webhooks",
                       "schedule": env.float("WEBHOOK_SWEEP_SECONDS", default=30.0), "options": {"expires": 60}},
}
# integrations/delivery.py: a failed webhook delivery is retried after RETRY × 2^(attempts − 1) seconds,
# up to MAX_ATTEMPTS; one pending past its time by SWEEP_GRACE lost its task and is sent again.
WEBHOOK_RETRY_SECONDS = env.float("WEBHOOK_RETRY_SECONDS", default=30.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_SWEEP_GRACE_SECONDS = env.float("WEBHOOK_SWEEP_GRACE_SECONDS", default=60.0)
# A call.ended waits this long at most for the call's stream to close, for its transcript (integrations/outbox.py).
CALL_ENDED_WAIT_SECONDS = env.float("CALL_ENDED_WAIT_SECONDS", default=60.0)
# campaigns/reconcile.py: a live call with a sid is asked about (Call Details, Get Leg) once it is
# this long past its expected end: the ring timeout if never answered, else answer + time limit.
CALL_RING_TIMEOUT_SECONDS = env.int("CALL_RING_TIMEOUT_SECONDS", default=60)
CALL_RECONCILE_GRACE_SECONDS = env.int("CALL_RECONCILE_GRACE_SECONDS", default=60)
# A call whose stream ended this long ago with no final status is asked about too (its callback first).
STREAM_END_RECONCILE_SECONDS = env.int("STREAM_END_RECONCILE_SECONDS", default=20)
# campaigns/costs.py: Exotel fills a call's Price minutes after its end. An ended call is first asked
# about FIRST_CHECK after it, then after RETRY × 2^(checks − 1) (at most RETRY_MAX) while it has none,
# until it is GIVE_UP old.
PRICE_FIRST_CHECK_SECONDS = env.int("PRICE_FIRST_CHECK_SECONDS", default=120)
PRICE_RETRY_SECONDS = env.int("PRICE_RETRY_SECONDS", default=60)
PRICE_RETRY_MAX_SECONDS = env.int("PRICE_RETRY_MAX_SECONDS", default=1800)
PRICE_GIVE_UP_SECONDS = env.int("PRICE_GIVE_UP_SECONDS", default=2 * 86400)
# streams/heartbeat.py: how often a stream server says it is alive, and when silence means down.
STREAM_HEARTBEAT_SECONDS = env.float("STREAM_HEARTBEAT_SECONDS", default=2.0)
STREAM_HEARTBEAT_EXPIRES_SECONDS = env.float("STREAM_HEARTBEAT_EXPIRES_SECONDS", default=6.0)
# campaigns/calls.py: a call still queued this long lost its task (resent); one still dialling lost
# its worker mid-request (made unknown until a callback with its token settles it).
CALL_QUEUED_STALE_SECONDS = env.int("CALL_QUEUED_STALE_SECONDS", default=120)
CALL_DIALING_STALE_SECONDS = env.int("CALL_DIALING_STALE_SECONDS", default=60)
# campaigns/dialer.py: a `place_calls` message carries up to this many calls, and a tick's calls are
# spread over at least DIAL_MESSAGES_SPREAD messages (or one a call), so dial workers share them.
DIAL_CALLS_PER_MESSAGE = env.int("DIAL_CALLS_PER_MESSAGE", default=20)
DIAL_MESSAGES_SPREAD = env.int("DIAL_MESSAGES_SPREAD", default=100)
# An unknown call with no callback this long after its time limit is failed; the retry policy decides.
CALL_UNKNOWN_GRACE_SECONDS = env.int("CALL_UNKNOWN_GRACE_SECONDS", default=300)
# campaigns/breaker.py: a caller ID's health counts its calls of this window; the breaker pauses it for
# the cool-down once at least MIN_CALLS of them have finished and this share of those failed.
EXOPHONE_HEALTH_WINDOW_SECONDS = env.int("EXOPHONE_HEALTH_WINDOW_SECONDS", default=900)
EXOPHONE_BREAKER_MIN_CALLS = env.int("EXOPHONE_BREAKER_MIN_CALLS", default=10)
EXOPHONE_BREAKER_FAILURE_RATE = env.float("EXOPHONE_BREAKER_FAILURE_RATE", default=0.5)
EXOPHONE_BREAKER_COOLDOWN_SECONDS = env.int("EXOPHONE_BREAKER_COOLDOWN_SECONDS", default=300)
# The reference's 60-minute stream session limit; the stream server closes a stream at it.
STREAM_MAX_SECONDS = env.float("STREAM_MAX_SECONDS", default=3600)
# On SIGTERM the web server (config/server.py) lets live calls run this long before ending them.
STREAM_DRAIN_SECONDS = env.float("STREAM_DRAIN_SECONDS", default=120.0)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
# Mail (member invitations): printed to the console unless EMAIL_URL names a server (smtp+tls://user:pass@host:587).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="AgentStream <noreply@localhost>")
# Sign-in rate limit (django-axes), for the sign-in page and the admin's: after this many failures an
# account is locked for every address, and an address for every account, until the cool-off ends.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
# Behind the proxy the client's address comes from it (config/wsgi.py), or every sign-in would come from the proxy's.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Its admin pages would list every workspace's sign-ins to any staff; unlock with `manage.py axes_reset_username`.
AXES_ENABLE_ADMIN = False
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_TIME_ZONE = "Asia/Kolkata"  # workspaces and campaigns start here
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT", default=None)  # set where collectstatic runs (the Docker image)
SERVESTATIC_USE_FINDERS = True  # serve straight from static/ when collectstatic has not run
# Uploaded files (contacts, do-not-call lists) past this size are refused as they arrive (campaigns.uploads).
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_MB", default=20) * 2**20
# The national registry's scrub file holds millions of numbers (about 12 bytes each); it is streamed.
REGISTRY_UPLOAD_MAX_BYTES = env.int("REGISTRY_UPLOAD_MAX_MB", default=512) * 2**20
FILE_UPLOAD_HANDLERS = [
    "campaigns.uploads.BoundedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
MEDIA_URL = "media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(VAR_DIR / "media"))
# Recordings go through the storage API; object storage is a matter of this setting.
STORAGES = {
    "default": {"BACKEND": env("STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Hardened whenever the public base is https; a laptop on http://127.0.0.1 keeps plain cookies and
# no redirect. X-Forwarded-Proto and X-Forwarded-For are believed only when BEHIND_PROXY says the
# proxy in front sets them (any client could send them otherwise): docker-compose.yml sets it for
# the processes behind its nginx, and only for those (config/wsgi.py, daphne's --proxy-headers).
_HTTPS = PUBLIC_BASE_URL.startswith("https://")
BEHIND_PROXY = env.bool("BEHIND_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_SSL_REDIRECT = _HTTPS
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
SECURE_HSTS_SECONDS = 31536000 if _HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
# No inline script anywhere (pages and admin load theirs from static/), so an injected <script> or
# on*= handler does not run. Inline styles stay allowed (chart bar heights); recordings play from
# Exotel's (or the simulator's) web addresses.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "media-src": [SELF, "https:", "http:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Webhook and call tokens in logged paths are secrets (config/redaction.py).
    "filters": {"redact_tokens": {"()": "config.redaction.RedactTokens"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_tokens"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
