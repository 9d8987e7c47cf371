"""Group-state catch-up: fetching the group updates this node lacks from the space's other
nodes and applying them in order, so it decides on an op with the group's current members."""

import logging

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import anchors, dna
from kizuna_node.common.errors import FailedPrecondition, KizunaError, PermissionDenied
from kizuna_node.group_dht.holding import Holding
from kizuna_node.group_dht.read import Reader
from kizuna_node.group_dht.store import DhtStore
from kizuna_node.group_dht.validation import validate_op

log = logging.getLogger("kizuna.group_dht")


class GroupCatchUp:
    def __init__(self, store: DhtStore, reader: Reader, holding: Holding):
        self._store = store
        self._reader = reader
        self._holding = holding

    async def validate(self, signed: common_pb2.Signed, record: group_dht_pb2.Space | None,
                       holder: bool = True) -> group_dht_pb2.Op:
        """validate_op; in a group space whose state this node may be behind on (an author it
        does not know as a member, an update that skips ahead), it first catches up on the
        group's updates from its peers, then decides."""
        try:
            return validate_op(signed, record, self._store, holder=holder)
        except (PermissionDenied, FailedPrecondition):
            if record is None or record.template != dna.GROUP_TEMPLATE or not await self.refresh_group_state(record.space):
                raise
            return validate_op(signed, self._store.get_space(record.space), self._store, holder=holder)

    async def refresh_group_state(self, space: bytes) -> bool:
        """Fetches the group's updates this node lacks from the space's other nodes and
        applies them in order; whether the state moved."""
        record = self._store.get_space(space)
        if record is None:
            return False
        before = record.update_seq
        try:
            links = await self._reader.get_links(space, anchors.group_updates_anchor(space))
        except KizunaError:
            return False
        for link in anchors.in_update_order(links.links):
            target = group_dht_pb2.Op.FromString(link.create.body).target
            if self._store.entry_op(space, target) is not None:
                continue
            try:
                got = await self._reader.get(space, target)
                if got.found:
                    self._holding.store_validated(got.op, validate_op(got.op, self._store.get_space(space), self._store))
            except KizunaError as exc:
                log.info("could not apply a group update while catching up: %s", exc.message)
                break
        return self._store.get_space(space).update_seq > before
