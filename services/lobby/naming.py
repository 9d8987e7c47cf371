"""Naming agents: an agent named by key or username in a request, and an agent key
shortened for logs."""

import base64
import binascii

from kizuna_node.common import ids


def parse_agent_ref(ref: str) -> bytes | None:
    """A participant given as a base64 agent key, else None (then it is a username)."""
    try:
        raw = base64.b64decode(ref, validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(ref)
        except (binascii.Error, ValueError):
            return None
    return raw if len(raw) == 32 else None


short = ids.agent  # an agent key as every service's logs spell it
