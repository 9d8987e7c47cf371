"""The conductor's records: agents and their keys, app tokens, cells. The only code that
knows their keys."""

from kizuna.v1 import conductor_pb2
from services.common.hashing import blake2b_256
from services.common.store import Store


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

    def close(self) -> None:
        self._store.close()
