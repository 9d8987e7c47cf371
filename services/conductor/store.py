"""The conductor's records: agents and their keys, app tokens, cells."""

from kizuna.v1 import conductor_pb2
from services.common.store import Store


class ConductorStore:
    def __init__(self, path: str):
        self._store = Store(path)
        self.agents = self._store.table(b"agent:")  # agent key -> Agent
        self.secrets = self._store.table(b"secret:")  # agent key -> signing seed (32) + X25519 secret (32)
        self.tokens = self._store.table(b"apptoken:")  # BLAKE2b(token) -> AppToken
        self.cells = self._store.table(b"cell:")  # agent key + dna hash -> Cell

    def put_agent(self, agent: conductor_pb2.Agent, secret: bytes, token_key: bytes, token: conductor_pb2.AppToken,
                  lobby_cell: conductor_pb2.Cell) -> None:
        with self._store.batch() as b:
            b.put(self.agents, agent.agent, agent.SerializeToString())
            b.put(self.secrets, agent.agent, secret)
            b.put(self.tokens, token_key, token.SerializeToString())
            b.put(self.cells, agent.agent + lobby_cell.dna_hash, lobby_cell.SerializeToString())

    def get_agent(self, key: bytes) -> conductor_pb2.Agent | None:
        raw = self.agents.get(key)
        return conductor_pb2.Agent.FromString(raw) if raw is not None else None

    def list_agents(self) -> list[conductor_pb2.Agent]:
        return [conductor_pb2.Agent.FromString(v) for _, v in self.agents.items()]

    def get_secret(self, key: bytes) -> bytes | None:
        return self.secrets.get(key)

    def get_token(self, token_key: bytes) -> conductor_pb2.AppToken | None:
        raw = self.tokens.get(token_key)
        return conductor_pb2.AppToken.FromString(raw) if raw is not None else None

    def put_token(self, token_key: bytes, token: conductor_pb2.AppToken) -> None:
        self.tokens.put(token_key, token.SerializeToString())

    def list_tokens(self) -> list[tuple[bytes, conductor_pb2.AppToken]]:
        return [(k, conductor_pb2.AppToken.FromString(v)) for k, v in self.tokens.items()]

    def get_cell(self, agent: bytes, dna_hash: bytes) -> conductor_pb2.Cell | None:
        raw = self.cells.get(agent + dna_hash)
        return conductor_pb2.Cell.FromString(raw) if raw is not None else None

    def put_cell(self, cell: conductor_pb2.Cell) -> None:
        self.cells.put(cell.agent + cell.dna_hash, cell.SerializeToString())

    def delete_cell(self, agent: bytes, dna_hash: bytes) -> None:
        self.cells.delete(agent + dna_hash)

    def list_cells(self, agent: bytes) -> list[conductor_pb2.Cell]:
        return [conductor_pb2.Cell.FromString(v) for _, v in self.cells.items(prefix=agent)]

    def close(self) -> None:
        self._store.close()
