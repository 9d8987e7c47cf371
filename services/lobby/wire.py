"""Reading what arrives from outside: a protobuf parsed or refused with a clear message,
an agent named by key or username, and an agent key shortened for logs."""

import base64
import binascii

from services.common.errors import InvalidArgument


def parse(message_type, data: bytes, what: str):
    """`data` as a `message_type`, or InvalidArgument naming `what`."""
    try:
        return message_type.FromString(data)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise InvalidArgument(f"the {what} does not parse") from None


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


def short(agent: bytes) -> str:
    return base64.b64encode(agent).decode()[:8]
