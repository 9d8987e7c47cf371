"""The conductor's records: agents and their keys, app tokens, cells, and the agents'
Olm accounts and sessions and Megolm group sessions (pickled, encrypted). The only code
that knows their keys."""

from kizuna.v1 import conductor_pb2
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.store import Store


def _token_key(app_token: str) -> bytes:
    """Tokens are stored by hash, so the store alone does not give them away."""
    return blake2b_256(app_token.encode())


class ConductorStore:
    def __init__(self, path: str):
        self._store = Store(path)
        self._agents = self._store.table(b"agent:")  # agent key -> Agent
        self._secrets = self._store.table(b"secret:")  # agent key -> signing seed (32) + X25519 secret (32)
        self._tokens = self._store.table(b"apptoken:")  # BLAKE2b(token) -> AppToken
        self._cells = self._store.table(b"cell:")  # agent key + dna hash -> Cell
        self._olm_accounts = self._store.table(b"olm_account:")  # agent key -> pickled Olm account
        self._olm_sessions = self._store.table(b"olm_session:")  # agent + peer + session id -> StoredOlmSession
        self._outbound = self._store.table(b"megolm_out:")  # agent + session id -> StoredGroupSession
        self._current = self._store.table(b"megolm_current:")  # agent + group_uuid -> its outbound session id
        self._inbound = self._store.table(b"megolm_in:")  # agent + sender + session id -> StoredGroupSession

    def put_agent(self, agent: conductor_pb2.Agent, secret: bytes, app_token: str, token: conductor_pb2.AppToken,
                  lobby_cell: conductor_pb2.Cell) -> None:
        """A new agent with its keys, its first app token and its Lobby cell, together."""
        with self._store.batch() as b:
            b.put(self._agents, agent.agent, agent.SerializeToString())
            b.put(self._secrets, agent.agent, secret)
            b.put(self._tokens, _token_key(app_token), token.SerializeToString())
            b.put(self._cells, agent.agent + lobby_cell.dna_hash, lobby_cell.SerializeToString())

    def get_agent(self, key: bytes) -> conductor_pb2.Agent | None:
        raw = self._agents.get(key)
        return conductor_pb2.Agent.FromString(raw) if raw is not None else None

    def list_agents(self) -> list[conductor_pb2.Agent]:
        return [conductor_pb2.Agent.FromString(v) for _, v in self._agents.items()]

    def get_secret(self, key: bytes) -> bytes | None:
        return self._secrets.get(key)

    def get_token(self, app_token: str) -> conductor_pb2.AppToken | None:
        raw = self._tokens.get(_token_key(app_token))
        return conductor_pb2.AppToken.FromString(raw) if raw is not None else None

    def put_token(self, app_token: str, token: conductor_pb2.AppToken) -> None:
        self._tokens.put(_token_key(app_token), token.SerializeToString())

    def list_tokens(self) -> list[conductor_pb2.AppToken]:
        return [conductor_pb2.AppToken.FromString(v) for _, v in self._tokens.items()]

    def revoke_token(self, token_id: str) -> conductor_pb2.AppToken | None:
        """Marks the token of that id revoked; the token as it is now, or None when no token
        has that id."""
        for key, value in self._tokens.items():
            token = conductor_pb2.AppToken.FromString(value)
            if token.token_id == token_id:
                token.revoked = True
                self._tokens.put(key, token.SerializeToString())
                return token
        return None

    def get_cell(self, agent: bytes, dna_hash: bytes) -> conductor_pb2.Cell | None:
        raw = self._cells.get(agent + dna_hash)
        return conductor_pb2.Cell.FromString(raw) if raw is not None else None

    def put_cell(self, cell: conductor_pb2.Cell) -> None:
        self._cells.put(cell.agent + cell.dna_hash, cell.SerializeToString())

    def delete_cell(self, agent: bytes, dna_hash: bytes) -> None:
        self._cells.delete(agent + dna_hash)

    def list_cells(self, agent: bytes) -> list[conductor_pb2.Cell]:
        return [conductor_pb2.Cell.FromString(v) for _, v in self._cells.items(prefix=agent)]

    def get_olm_account(self, agent: bytes) -> str | None:
        raw = self._olm_accounts.get(agent)
        return raw.decode() if raw is not None else None

    def put_olm_account(self, agent: bytes, pickle: str) -> None:
        self._olm_accounts.put(agent, pickle.encode())

    def olm_sessions(self, agent: bytes, peer: bytes) -> list[tuple[bytes, conductor_pb2.StoredOlmSession]]:
        """(key, session) for the agent's Olm sessions with a peer, most recently used first."""
        found = [(key, conductor_pb2.StoredOlmSession.FromString(value))
                 for key, value in self._olm_sessions.items(prefix=agent + peer)]
        return sorted(found, key=lambda pair: pair[1].last_used, reverse=True)

    def outbound_session(self, agent: bytes, session_id: str) -> conductor_pb2.StoredGroupSession | None:
        raw = self._outbound.get(agent + session_id.encode())
        return conductor_pb2.StoredGroupSession.FromString(raw) if raw is not None else None

    def current_session(self, agent: bytes, group_uuid: str) -> conductor_pb2.StoredGroupSession | None:
        """The agent's outbound session for the group, if it has one."""
        session_id = self._current.get(agent + group_uuid.encode())
        return self.outbound_session(agent, session_id.decode()) if session_id is not None else None

    def inbound_session(self, agent: bytes, sender: bytes, session_id: str) -> conductor_pb2.StoredGroupSession | None:
        raw = self._inbound.get(agent + sender + session_id.encode())
        return conductor_pb2.StoredGroupSession.FromString(raw) if raw is not None else None

    def group_sessions(self, agent: bytes) -> list[conductor_pb2.StoredGroupSession]:
        """The agent's outbound sessions, then the inbound ones it holds."""
        return [conductor_pb2.StoredGroupSession.FromString(v)
                for table in (self._outbound, self._inbound) for _, v in table.items(prefix=agent)]

    def put_crypto(self, agent: bytes, account: str | None = None, olm_sessions=(), outbound=None,
                   current: bool = False, inbound=()) -> None:
        """One change to the agent's crypto state, written at once: its account pickle, Olm
        sessions (StoredOlmSession), an outbound session (made the group's current one with
        `current`), inbound sessions. Not synced: a crashed process loses none of it, a
        crashed machine at most its last writes, never half a change."""
        with self._store.batch(sync=False) as b:
            if account is not None:
                b.put(self._olm_accounts, agent, account.encode())
            for session_id, session in olm_sessions:
                b.put(self._olm_sessions, agent + session.peer + session_id.encode(), session.SerializeToString())
            if outbound is not None:
                session_id = outbound.info.session_id.encode()
                b.put(self._outbound, agent + session_id, outbound.SerializeToString())
                if current:
                    b.put(self._current, agent + outbound.info.group_uuid.encode(), session_id)
            for session in inbound:
                b.put(self._inbound, agent + session.info.sender + session.info.session_id.encode(),
                      session.SerializeToString())

    def forget_olm_sessions(self, keys) -> None:
        with self._store.batch(sync=False) as b:
            for key in keys:
                b.delete(self._olm_sessions, key)

    def close(self) -> None:
        self._store.close()
