"""Webhook services: parsing every documented shape (`parsing`) and applying it (`applying`)."""

from callbacks.services.applying import apply, record

__all__ = ["apply", "record"]
