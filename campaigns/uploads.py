"""Uploaded files are refused at the door once they pass settings.UPLOAD_MAX_BYTES (the national
registry's scrub file: REGISTRY_UPLOAD_MAX_BYTES).

Installed first in FILE_UPLOAD_HANDLERS: a request whose Content-Length is already too large is stopped
before its first file byte is stored, and one without an honest length the moment its file parts pass
the limit, so no view ever reads a file whole only to refuse it. The view finds the reason in
`refusal(request)`. (daphne itself receives a request's body before the application sees it: a proxy
in front should bound bodies too, e.g. nginx's client_max_body_size.)
"""

from django import forms
from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

FORM_OVERHEAD = 64 * 1024  # the other fields and the multipart framing around the file


LARGER_LIMITS = {"campaigns:dnc_registry": "REGISTRY_UPLOAD_MAX_BYTES"}  # view name -> setting


def limit(request=None) -> int:
    """The request's limit, by the view it was resolved to (resolved before any middleware reads the body)."""
    view = getattr(getattr(request, "resolver_match", None), "view_name", "")
    return getattr(settings, LARGER_LIMITS.get(view, "UPLOAD_MAX_BYTES"))


def limit_text(request=None) -> str:
    return f"{limit(request) / 2**20:g} MB"


def refusal(request) -> str:
    """Why the request's file was stopped, or "" if it was not."""
    return getattr(request, "upload_refused", "")


class BoundedFileForm(forms.Form):
    """A form with a `file` field that this handler may have stopped; pass `refused=refusal(request)`.
    Declare the other fields before the file: a file stopped on its way in loses the fields sent after it."""

    def __init__(self, *args, refused: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.refused = refused

    def full_clean(self):
        super().full_clean()
        if self.refused:
            self.errors["file"] = self.error_class([self.refused])  # instead of "This field is required."


class BoundedUploadHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.received, self.limit = 0, limit(self.request)
        self.declared_too_large = content_length > self.limit + FORM_OVERHEAD

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        if self.declared_too_large:
            self._refuse()

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self._refuse()
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler keeps the file

    def _refuse(self):
        self.request.upload_refused = f"The file is larger than {limit_text(self.request)}: split it into smaller files."
        # The rest of the body is not read: the browser may see the connection close.
        raise StopUpload(connection_reset=True)
