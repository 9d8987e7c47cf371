"""How every service writes an id in its logs, one spelling each: an agent as the first 8
characters of its base64 key (as `network.json` and the CLI give keys), every other hash
(a space or DNA hash, a node id, an op or message hash) as its first 16 hex digits, a
group by its uuid."""

import base64


def agent(key: bytes) -> str:
    return base64.b64encode(key).decode()[:8]


def hash_(value: bytes) -> str:
    return value.hex()[:16]
