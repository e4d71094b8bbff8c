"""Webhook services: parsing every documented shape (`parsing`), storing and applying it (`applying`)."""

from callbacks.services.applying import answer_now, apply, receive

__all__ = ["answer_now", "apply", "receive"]
