"""Storing an op this node validated, with what follows from it: a group update moves the
group space's state, an agent info in the lobby teaches the agent's DHT address."""

import logging

from kizuna.v1 import common_pb2, group_dht_pb2
from kizuna_node.common import dna, group_state, metrics
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.group_dht.store import DhtStore
from kizuna_node.group_dht.validation import AGENT_INFO, group_update_of, op_hash, state_of

log = logging.getLogger("kizuna.group_dht")


def set_group_state(record: group_dht_pb2.Space, state: group_state.GroupState) -> None:
    """Writes a group's state into this node's record of its space (the inverse of state_of)."""
    record.update_seq, record.update_head, record.name = state.seq, state.head, state.name
    del record.members[:], record.admins[:]
    record.members.extend(state.members)
    record.admins.extend(state.admins)


class Holding:
    """`learn_address(address, certificate)` is told the DHT address of each agent info stored
    here, with the TLS certificate the info names for it."""

    def __init__(self, store: DhtStore, learn_address):
        self._store = store
        self._learn_address = learn_address

    def store_validated(self, signed: common_pb2.Signed, op: group_dht_pb2.Op) -> bool:
        """Stores a validated op; False if it was held already. A group update is checked against the state once more here,
        with no await between that and the write, so two updates validated at the same
        time cannot both be stored: the second is refused."""
        update = group_update_of(op)
        record = self._store.get_space(op.space) if update is not None else None
        if update is not None and record is not None and record.template == dna.GROUP_TEMPLATE:
            if self._store.entry_op(op.space, blake2b_256(op.entry)) is not None:
                return False  # held already
            state, _ = group_state.apply_update(state_of(record), update)
            set_group_state(record, state)
            self._store.put_op(op_hash(signed), signed, op, space_record=record)
            log.info("group space %s: update %d applied", op.space.hex()[:16], state.seq)
            metrics.DHT_OPS_STORED.inc()
            return True
        if not self._store.put_op(op_hash(signed), signed, op):
            return False
        metrics.DHT_OPS_STORED.inc()
        if op.entry_type == AGENT_INFO:
            info = group_dht_pb2.AgentInfo.FromString(op.entry)
            if info.dht_address:
                self._learn_address(info.dht_address, info.tls_certificate)
        return True
