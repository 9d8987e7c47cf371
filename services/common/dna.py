"""DNA hashes: a template and its properties, canonically encoded, hashed.

Cloning the `group` template with a group's properties gives a DNA hash no other group
has, so each group gets a space ("different DHT") of its own, and the hash proves the
initial members to anyone who holds the properties.
"""

import base64
import json

from kizuna_node.common.errors import InvalidArgument
from kizuna_node.common.hashing import blake2b_256

LOBBY_TEMPLATE = "lobby"
GROUP_TEMPLATE = "group"
TEMPLATE_VERSION = "kizuna-1"


def _canonical(template: str, fields: dict) -> bytes:
    return json.dumps(
        {"template": template, "version": TEMPLATE_VERSION, "properties": fields},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def group_properties_fields(properties) -> dict:
    """The GroupProperties message as plain, order-preserving data."""
    return {
        "group_uuid": properties.group_uuid,
        "name": properties.name,
        "creator": base64.b64encode(properties.creator).decode(),
        "initial_members": [base64.b64encode(m).decode() for m in properties.initial_members],
        "network_seed": properties.network_seed,
    }


def lobby_dna_hash() -> bytes:
    return blake2b_256(_canonical(LOBBY_TEMPLATE, {}))


def group_dna_hash(properties) -> bytes:
    return blake2b_256(_canonical(GROUP_TEMPLATE, group_properties_fields(properties)))


def check_group_properties(properties) -> None:
    """Refuses properties no group DNA can be cloned from."""
    if not properties.group_uuid:
        raise InvalidArgument("group properties need a group_uuid")
    if not properties.initial_members:
        raise InvalidArgument("group properties need initial_members")
    if len(properties.creator) != 32:
        raise InvalidArgument("group properties need a 32-byte creator key")
    if properties.creator not in properties.initial_members:
        raise InvalidArgument("the creator must be among the initial_members")
    if any(len(m) != 32 for m in properties.initial_members):
        raise InvalidArgument("each initial member must be a 32-byte agent key")
    if len(set(properties.initial_members)) != len(properties.initial_members):
        raise InvalidArgument("initial_members must not repeat an agent")


LOBBY_DNA_HASH = lobby_dna_hash()
