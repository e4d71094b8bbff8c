"""kombu's filesystem queue with atomic writes: the broker when no REDIS_URL is set (the demo, a laptop).

kombu writes each message straight into its final file, and its consumer takes the file without
waiting for the writer's lock: a worker that polls while beat or the web server is still writing
reads half a message and dies (`Unrecoverable error: JSONDecodeError`, 4 of 5 demo runs within
minutes). Here a message is written under a name no consumer matches and renamed into place;
a rename is atomic on POSIX, so a consumer finds a whole message or none. No dependency needed.
"""

import os
import tempfile
import time
import uuid

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # kombu's own name: milliseconds first, so the consumer's sorted listing stays first in, first out.
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        # "partial-….tmp" never matches a consumer's "<anything>.<queue>.msg" pattern.
        handle, partial = tempfile.mkstemp(prefix="partial-", suffix=".tmp", dir=self.data_folder_out)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, os.path.join(self.data_folder_out, name))
        except OSError as error:
            raise ChannelError(f"Cannot add a message to {self.data_folder_out}") from error
        finally:
            if os.path.exists(partial):
                os.remove(partial)


class Transport(filesystem.Transport):
    Channel = Channel
