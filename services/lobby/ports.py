"""The lobby's outgoing calls: what the workflows need of its conductor, its DHT node and
other lobbies (typed Protocols, which unit tests' fakes implement too), and their gRPC
adapters.

Each failed call becomes the domain error of the status that came back, so the domain
code never sees grpc.
"""

from typing import Protocol

import grpc

from kizuna.v1 import conductor_pb2, conductor_pb2_grpc, group_dht_pb2, group_dht_pb2_grpc, lobby_pb2_grpc
from kizuna_node.common import dna, node_secret
from kizuna_node.common.channels import ChannelPool
from kizuna_node.common.hashing import blake2b_256
from kizuna_node.common.keys import MAX_BATCH, MAX_SIGN_BYTES
from kizuna_node.common.rpc import remote_error

LOCAL_TIMEOUT = 10.0


async def _call(method, request, timeout, metadata=None):
    try:
        return await method(request, timeout=timeout, metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        raise remote_error(exc) from exc


def _chunks(items: list[bytes]):
    """`items` in order, in runs the conductor signs in one call (one item of its own when
    that item alone is too big, for the conductor to refuse)."""
    chunk, size = [], 0
    for item in items:
        if chunk and (len(chunk) == MAX_BATCH or size + len(item) > MAX_SIGN_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item)
    if chunk:
        yield chunk


class Conductor(Protocol):
    """The node's keystore and cells; nothing else holds a private key."""

    async def sign(self, agent: bytes, data: bytes) -> bytes: ...

    async def sign_batch(self, agent: bytes, items: list[bytes], app_token: str = "") -> list[bytes]: ...

    async def clone_dna(self, agent: bytes, properties, updates=()) -> conductor_pb2.Cell: ...

    async def delete_clone_cell(self, agent: bytes, dna_hash: bytes) -> None: ...

    async def list_agents(self) -> list[conductor_pb2.Agent]: ...

    async def decrypt_batch(self, agent: bytes, items: list[tuple]) -> list[tuple[bytes, str]]: ...

    async def resolve_token(self, app_token: str) -> conductor_pb2.Agent: ...

    async def encrypt_group_message(self, agent: bytes, group_uuid: str, plaintext: bytes, receivers,
                                    app_token: str = "") -> tuple: ...

    async def decrypt_group_messages(self, items) -> list[tuple[bytes, str, bool]]: ...

    async def import_group_keys(self, agent: bytes, shares) -> list[conductor_pb2.ImportedKey]: ...

    async def share_group_key(self, agent: bytes, group_uuid: str, session_id: str, receiver): ...


class Dht(Protocol):
    """The node's DHT: publishing signed ops, validated reads, joining a space."""

    async def publish(self, signed_op, local_only: bool = False) -> group_dht_pb2.PublishResponse: ...

    async def get(self, space: bytes, address: bytes): ...

    async def get_links(self, space: bytes, base: bytes, tag_prefix: bytes = b"") -> list[group_dht_pb2.Link]: ...

    async def get_links_with_targets(self, space: bytes, base: bytes, tag_prefix: bytes = b"",
                                     holders_only: bool = False): ...

    async def join_space(self, space: bytes, agent: bytes, template: str, properties=None) -> None: ...


class Remote(Protocol):
    """call_remote's transport: one call of a LobbyPeer method on the lobby at `address`,
    which must present TLS certificate `certificate` (DER)."""

    async def call(self, address: str, certificate: bytes, method: str, request, timeout: float): ...


class ConductorPort(Conductor):
    """Every call carries the node's secret: the conductor serves only its own node."""

    def __init__(self, channel: grpc.aio.Channel, secret: str):
        self._stub = conductor_pb2_grpc.ConductorStub(channel)
        self._metadata = ((node_secret.METADATA_KEY, secret),)

    async def sign(self, agent: bytes, data: bytes) -> bytes:
        response = await _call(self._stub.Sign, conductor_pb2.SignRequest(agent=agent, data=data), LOCAL_TIMEOUT, self._metadata)
        return response.signature

    async def sign_batch(self, agent: bytes, items: list[bytes], app_token: str = "") -> list[bytes]:
        """With `app_token`, signs only if the token is live and names `agent`. Items beyond
        what the conductor signs in one call (a big message to a big group) go in several."""
        signatures = []
        for chunk in _chunks(items):
            request = conductor_pb2.SignBatchRequest(agent=agent, data=chunk, app_token=app_token)
            signatures += (await _call(self._stub.SignBatch, request, LOCAL_TIMEOUT, self._metadata)).signatures
        return signatures

    async def clone_dna(self, agent: bytes, properties, updates=()) -> conductor_pb2.Cell:
        request = conductor_pb2.CloneDnaRequest(agent=agent, template=dna.GROUP_TEMPLATE, properties=properties,
                                                updates=list(updates))
        return (await _call(self._stub.CloneDna, request, LOCAL_TIMEOUT, self._metadata)).cell

    async def delete_clone_cell(self, agent: bytes, dna_hash: bytes) -> None:
        request = conductor_pb2.DeleteCloneCellRequest(agent=agent, dna_hash=dna_hash)
        await _call(self._stub.DeleteCloneCell, request, LOCAL_TIMEOUT, self._metadata)

    async def list_agents(self) -> list[conductor_pb2.Agent]:
        return list((await _call(self._stub.ListAgents, conductor_pb2.ListAgentsRequest(), LOCAL_TIMEOUT, self._metadata)).agents)

    async def decrypt_batch(self, agent: bytes, items: list[tuple]) -> list[tuple[bytes, str]]:
        """(plaintext, error) for each (sealed, aad), in order."""
        request = conductor_pb2.DecryptBatchRequest(
            agent=agent, items=[conductor_pb2.DecryptItem(sealed=sealed, aad=aad) for sealed, aad in items])
        response = await _call(self._stub.DecryptBatch, request, LOCAL_TIMEOUT, self._metadata)
        return [(r.plaintext, r.error) for r in response.results]

    async def resolve_token(self, app_token: str) -> conductor_pb2.Agent:
        request = conductor_pb2.ResolveTokenRequest(app_token=app_token)
        return (await _call(self._stub.ResolveToken, request, LOCAL_TIMEOUT, self._metadata)).agent

    async def encrypt_group_message(self, agent: bytes, group_uuid: str, plaintext: bytes, receivers,
                                    app_token: str = "") -> tuple:
        """(EncryptedPayload, key shares for the receivers that lack the session)."""
        request = conductor_pb2.EncryptGroupMessageRequest(agent=agent, group_uuid=group_uuid, plaintext=plaintext,
                                                           receivers=receivers, app_token=app_token)
        response = await _call(self._stub.EncryptGroupMessage, request, LOCAL_TIMEOUT, self._metadata)
        return response.encrypted, list(response.key_shares)

    async def decrypt_group_messages(self, items) -> list[tuple[bytes, str, bool]]:
        """(plaintext, error, missing_key) for each GroupCiphertext, in order."""
        results = []
        for start in range(0, len(items), MAX_BATCH):
            request = conductor_pb2.DecryptGroupMessagesRequest(items=items[start:start + MAX_BATCH])
            response = await _call(self._stub.DecryptGroupMessages, request, LOCAL_TIMEOUT, self._metadata)
            results += [(r.plaintext, r.error, r.missing_key) for r in response.results]
        return results

    async def import_group_keys(self, agent: bytes, shares) -> list[conductor_pb2.ImportedKey]:
        request = conductor_pb2.ImportGroupKeysRequest(agent=agent, key_shares=shares)
        return list((await _call(self._stub.ImportGroupKeys, request, LOCAL_TIMEOUT, self._metadata)).results)

    async def share_group_key(self, agent: bytes, group_uuid: str, session_id: str, receiver):
        request = conductor_pb2.ShareGroupKeyRequest(agent=agent, group_uuid=group_uuid, session_id=session_id,
                                                     receiver=receiver)
        return (await _call(self._stub.ShareGroupKey, request, LOCAL_TIMEOUT, self._metadata)).key_share


class DhtPort(Dht):
    def __init__(self, channel: grpc.aio.Channel, secret: str):
        self._stub = group_dht_pb2_grpc.GroupDhtStub(channel)
        self._metadata = ((node_secret.METADATA_KEY, secret),)

    async def publish(self, signed_op, local_only: bool = False) -> group_dht_pb2.PublishResponse:
        request = group_dht_pb2.PublishRequest(op=signed_op, local_only=local_only)
        return await _call(self._stub.Publish, request, LOCAL_TIMEOUT)

    async def get(self, space: bytes, address: bytes):
        response = await _call(self._stub.Get, group_dht_pb2.GetRequest(space=space, address=address), LOCAL_TIMEOUT,
                               self._metadata)
        return response.op if response.found else None

    async def get_links(self, space: bytes, base: bytes, tag_prefix: bytes = b"") -> list[group_dht_pb2.Link]:
        request = group_dht_pb2.GetLinksRequest(space=space, base=base, tag_prefix=tag_prefix)
        return list((await _call(self._stub.GetLinks, request, LOCAL_TIMEOUT, self._metadata)).links)

    async def get_links_with_targets(self, space: bytes, base: bytes, tag_prefix: bytes = b"",
                                     holders_only: bool = False):
        """The live links and, by address, the target entries the DHT could send along
        (from the holders only, with `holders_only`: see GetLinksRequest)."""
        request = group_dht_pb2.GetLinksRequest(space=space, base=base, tag_prefix=tag_prefix, with_targets=True,
                                                holders_only=holders_only)
        response = await _call(self._stub.GetLinks, request, LOCAL_TIMEOUT, self._metadata)
        targets = {}
        for signed in response.targets:
            targets[blake2b_256(group_dht_pb2.Op.FromString(signed.body).entry)] = signed
        return list(response.links), targets

    async def join_space(self, space: bytes, agent: bytes, template: str, properties=None) -> None:
        request = group_dht_pb2.JoinSpaceRequest(space=space, agent=agent, template=template, properties=properties)
        await _call(self._stub.JoinSpace, request, LOCAL_TIMEOUT, self._metadata)


class RemoteLobbies(Remote):
    """call_remote's transport over a pool of TLS channels to other nodes' lobbies, each
    pinned to the certificate the receiver's agent info names."""

    def __init__(self, pool: ChannelPool):
        self._pool = pool
        self._stubs: dict[tuple[str, bytes], tuple[grpc.aio.Channel, lobby_pb2_grpc.LobbyPeerStub]] = {}

    async def call(self, address: str, certificate: bytes, method: str, request, timeout: float):
        channel = self._pool.pinned(address, certificate)
        cached = self._stubs.get((address, certificate))
        if cached is None or cached[0] is not channel:  # never a stub of a channel since closed
            cached = self._stubs[(address, certificate)] = (channel, lobby_pb2_grpc.LobbyPeerStub(channel))
        return await _call(getattr(cached[1], method), request, timeout)
