"""The embedded broker's queue (config/filequeue.py): a consumer finds a whole message or none."""

import contextlib
from queue import Empty

import pytest
from kombu import Connection

from config import filequeue


@pytest.fixture
def channel(tmp_path):
    folders = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path),
               "control_folder": str(tmp_path / "control")}
    with Connection(transport=filequeue.Transport, transport_options=folders) as connection:
        yield connection.default_channel


def test_a_message_being_written_is_invisible_to_a_consumer(channel, monkeypatch):
    seen_while_writing = []
    replace = filequeue.os.replace

    def consumer_looks_first(source, target):
        with contextlib.suppress(Empty):
            seen_while_writing.append(channel._get("celery"))
        replace(source, target)

    monkeypatch.setattr(filequeue.os, "replace", consumer_looks_first)
    channel._put("celery", {"body": "x" * 100_000})

    assert seen_while_writing == []
    assert channel._get("celery") == {"body": "x" * 100_000}

