"""The node's secret: what a node-internal call (the lobby asking its conductor to sign,
decrypt or clone) carries to show it comes from the same node."""

import hmac
import os
import secrets

from kizuna_node.common.errors import PermissionDenied

METADATA_KEY = "x-kizuna-node-secret"
DEFAULT_FILE = "node.secret"


def load_or_create(path: str) -> str:
    """The secret in `path`, made (readable by its owner only) when the file is missing."""
    try:
        with open(path) as f:
            secret = f.read().strip()
        if secret:
            return secret
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    secret = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another service of the node made it a moment ago
        return load(path)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


def load(path: str) -> str:
    with open(path) as f:
        secret = f.read().strip()
    if not secret:
        raise ValueError(f"{path} holds no node secret")
    return secret


def carries(metadata, secret: str) -> bool:
    """Whether a call's metadata carries the node's secret."""
    return any(key == METADATA_KEY and hmac.compare_digest(value.encode(), secret.encode())
               for key, value in metadata or ())


def check(metadata, secret: str) -> None:
    """Refuses a call whose metadata does not carry the node's secret."""
    if not carries(metadata, secret):
        raise PermissionDenied(f"a node-internal call needs this node's secret ({METADATA_KEY})")
