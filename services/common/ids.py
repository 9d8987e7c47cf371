"""How every service writes an agent in its logs: the first 8 characters of its base64 key
(as `network.json` and the CLI give keys). Every other hash (a space or DNA hash, a node
id, an op or message hash) is written as its first 16 hex digits, a group by its uuid."""

import base64


def agent(key: bytes) -> str:
    return base64.b64encode(key).decode()[:8]
