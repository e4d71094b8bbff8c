"""The WebSocket routes dialled by charlie with the values test_sweep.py walks the URLconf with.

Apart from that sweep because it is transactional: the consumers read the database on threads of
their own, so acme must be committed, where the sweep's acme is built once and never committed.
"""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from streams.routing import websocket_urlpatterns
from tests.campaigns.conftest import private_media  # noqa: F401 (a fixture: the upload's files)
from tests.conftest import signed_in
from tests.tenancy.test_sweep import Acme, charlies_value, fill


@pytest.fixture
def acme_data(acme, globex, charlie, private_media):  # noqa: F811
    return Acme(acme, globex, charlie)


@pytest.mark.django_db(transaction=True)
def test_no_websocket_route_opens_to_charlie_with_acmes_values(acme_data, charlie):
    cookie = f"sessionid={signed_in(charlie).cookies['sessionid'].value}".encode()
    headers = [(b"cookie", cookie), (b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    urls = [url for pattern in websocket_urlpatterns for url in fill(str(pattern.pattern), charlies_value(acme_data))]
    assert {url.split("/")[1] for url in urls} == {"streams", "live"}

    async def dial(url: str) -> bool:
        socket = WebsocketCommunicator(application, url, headers=headers)
        # A refusal needs the database (session, token): give a loaded machine time to answer.
        connected, _ = await socket.connect(timeout=10)
        await socket.disconnect(timeout=10)
        return connected

    async def dial_each() -> list[str]:
        # In one event loop: the consumers' database threads are its executor's, and a thread that ends
        # with its loop keeps its pooled connection checked out until the test ends (a loop per URL ran
        # an xdist worker's pool of 20 dry, and the next refusal waited on it).
        return [url for url in urls if await dial(url)]

    opened = asyncio.run(dial_each())
    assert not opened, f"{opened} opened to charlie"
