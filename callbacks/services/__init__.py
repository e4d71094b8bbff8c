"""Webhook services: parsing every documented shape (`parsing`) and applying it (`applying`)."""

from callbacks.services.applying import Answer, apply, fields_of, find_call, record
from callbacks.services.parsing import Malformed

__all__ = ["Answer", "Malformed", "apply", "fields_of", "find_call", "record"]
