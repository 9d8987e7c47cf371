"""The spaces this node is in: joining and leaving them for its agents, and listing them."""

import logging

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import ids, dna, group_state, space_claims
from kizuna_node.common.errors import InvalidArgument, PermissionDenied, ResourceExhausted
from kizuna_node.common.keys import check_agent_key
from kizuna_node.group_dht.context import NodeContext
from kizuna_node.group_dht.holding import set_group_state
from kizuna_node.group_dht.validation import check_hash

log = logging.getLogger("kizuna.group_dht")

DEFAULT_MAX_SPACES = 1000


def _set_claims(record: group_dht_pb2.Space, claims) -> None:
    del record.claims[:]
    record.claims.extend(claims)


class Membership:
    """`announce()` tells the known peers, in the background, that this node's spaces changed."""

    def __init__(self, ctx: NodeContext, announce, max_spaces: int = DEFAULT_MAX_SPACES):
        self._ctx = ctx
        self._store = ctx.store
        self._announce = announce
        self.max_spaces = max_spaces

    async def join_space(self, space: bytes, agent: bytes, template: str, properties: common_pb2.GroupProperties,
                         updates=(), claim: group_dht_pb2.SpaceClaim | None = None) -> None:
        """Makes this node a member of the space for the agent; idempotent. For an agent
        added to a group after its creation, `updates` (the group's signed updates) prove
        it is a member. A group space needs the agent's `claim`, signed for this node,
        which the node's info then carries to its peers. A space new to the node is pushed
        to known peers in the background."""
        check_hash(space, "space")
        check_agent_key(agent)
        if template == dna.LOBBY_TEMPLATE:
            if space != dna.LOBBY_DNA_HASH:
                raise InvalidArgument("the lobby space is the Lobby DNA hash")
            properties = common_pb2.GroupProperties()
        elif template == dna.GROUP_TEMPLATE:
            dna.check_group_properties(properties)
            if space != dna.group_dna_hash(properties):
                raise InvalidArgument("space is not the DNA hash of these group properties")
            state = group_state.apply_chain(properties, updates)
            if not state.is_member(agent):
                raise PermissionDenied("the agent is not a member of the group")
            if claim is None or claim.agent != agent or not space_claims.is_signed_claim(claim, self._ctx.node_id, space):
                raise InvalidArgument("a group space is joined with the agent's claim, signed for this node and space")
        else:
            raise InvalidArgument(f"template must be '{dna.LOBBY_TEMPLATE}' or '{dna.GROUP_TEMPLATE}', not '{template}'")
        record = self._store.get_space(space)
        new_space = record is None
        if record is None:
            if self._store.space_count() >= self.max_spaces:
                raise ResourceExhausted(f"this node's DHT holds its maximum of {self.max_spaces} spaces")
            record = group_dht_pb2.Space(space=space, template=template, properties=properties)
        if template == dna.GROUP_TEMPLATE:
            if state.seq > record.update_seq:
                set_group_state(record, state)
            _set_claims(record, [c for c in record.claims if c.agent != agent] + [claim])
        elif agent in record.agents:
            return
        if agent not in record.agents:
            record.agents.append(agent)
        self._store.put_space(record)
        log.info("agent %s joined space %s", ids.agent(agent), space.hex()[:16])
        if new_space:  # the node's word about itself changed: its peers hear of it at once
            self._announce()

    async def leave_space(self, space: bytes, agent: bytes) -> None:
        """Removes the agent from the space; with no agent left, the node leaves the space
        and forgets its ops. Idempotent."""
        check_hash(space, "space")
        check_agent_key(agent)
        record = self._store.get_space(space)
        if record is None or agent not in record.agents:
            return
        remaining = [a for a in record.agents if a != agent]
        if remaining:
            del record.agents[:]
            record.agents.extend(remaining)
            _set_claims(record, [c for c in record.claims if c.agent != agent])
            self._store.put_space(record)
        else:
            self._store.drop_space(space)
            log.info("left space %s", space.hex()[:16])
        self._announce()

    def list_spaces(self) -> group_dht_pb2.ListSpacesResponse:
        """Every space this node is in with the number of ops it holds there, and every peer it knows."""
        spaces = self._store.list_spaces()
        for record in spaces:
            record.ops = self._store.op_count(record.space)
        return group_dht_pb2.ListSpacesResponse(node_id=self._ctx.node_id, spaces=spaces, peers=self._ctx.peers.all())
