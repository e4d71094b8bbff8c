"""Uploaded files are refused at the door once they pass settings.UPLOAD_MAX_BYTES.

Installed first in FILE_UPLOAD_HANDLERS: a request whose Content-Length is already too large is stopped
before its first file byte is stored, and one without an honest length the moment its file parts pass
the limit, so no view ever reads a file whole only to refuse it. The view finds the reason in
`refusal(request)`. (daphne itself receives a request's body before the application sees it: a proxy
in front should bound bodies too, e.g. nginx's client_max_body_size.)
"""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

FORM_OVERHEAD = 64 * 1024  # the other fields and the multipart framing around the file


def limit_text() -> str:
    return f"{settings.UPLOAD_MAX_BYTES / 2**20:g} MB"


def refusal(request) -> str:
    """Why the request's file was stopped, or "" if it was not."""
    return getattr(request, "upload_refused", "")


class BoundedUploadHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received = 0
        self.declared_too_large = content_length > settings.UPLOAD_MAX_BYTES + FORM_OVERHEAD

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        if self.declared_too_large:
            self._refuse()

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.UPLOAD_MAX_BYTES:
            self._refuse()
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler keeps the file

    def _refuse(self):
        self.request.upload_refused = f"The file is larger than {limit_text()}: split it into smaller files."
        # The rest of the body is not read: the browser may see the connection close.
        raise StopUpload(connection_reset=True)
