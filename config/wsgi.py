"""WSGI entry point: the web processes behind the proxy (pages, webhooks, the admin), under gunicorn.

No WebSocket and no stream server heartbeat here: streams and live feeds go to the stream servers
(`config.server` with `config.asgi`), and only those tell the dispatcher that calls can be streamed.

Behind the proxy (`BEHIND_PROXY`) the client's address is the one the proxy saw, as daphne's
`--proxy-headers` makes it for the stream servers: sign-in lockouts (django-axes) and logs count
clients, not the proxy. deploy/nginx sets X-Forwarded-For to that one address, never appends to it.

Static files are served here, before Django, not by ServeStatic's middleware: that middleware is
async only, and in a WSGI stack Django would run every request through an async_to_sync hop for
it, more than half the CPU of a webhook (bench/RESULTS.md, Webhooks). The files are the ones the
middleware finds from the settings, so both servers serve the same.
"""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from servestatic.middleware import ServeStaticMiddleware
from servestatic.utils import decode_path_info
from servestatic.wsgi import FileServerWSGI

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
STATIC_MIDDLEWARE = "servestatic.middleware.ServeStaticMiddleware"
settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != STATIC_MIDDLEWARE]
django_application = get_wsgi_application()


async def _not_static(request):  # the middleware needs a next handler; only its table of files is used
    raise AssertionError("not used")


static = ServeStaticMiddleware(_not_static)


def application(environ, start_response):
    if settings.BEHIND_PROXY and "HTTP_X_FORWARDED_FOR" in environ:
        environ["REMOTE_ADDR"] = environ["HTTP_X_FORWARDED_FOR"]
    path = decode_path_info(environ.get("PATH_INFO", ""))
    static_file = static.find_file(path) if static.autorefresh else static.files.get(path)
    if static_file is not None:
        return FileServerWSGI(static_file)(environ, start_response)
    return django_application(environ, start_response)
