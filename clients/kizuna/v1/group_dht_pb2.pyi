from kizuna.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OpKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OP_KIND_UNSPECIFIED: _ClassVar[OpKind]
    STORE_ENTRY: _ClassVar[OpKind]
    CREATE_LINK: _ClassVar[OpKind]
    DELETE_LINK: _ClassVar[OpKind]
OP_KIND_UNSPECIFIED: OpKind
STORE_ENTRY: OpKind
CREATE_LINK: OpKind
DELETE_LINK: OpKind

class Op(_message.Message):
    __slots__ = ("space", "kind", "author", "timestamp", "entry_type", "entry", "base", "target", "tag", "link_address")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    LINK_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    space: bytes
    kind: OpKind
    author: bytes
    timestamp: int
    entry_type: str
    entry: bytes
    base: bytes
    target: bytes
    tag: bytes
    link_address: bytes
    def __init__(self, space: _Optional[bytes] = ..., kind: _Optional[_Union[OpKind, str]] = ..., author: _Optional[bytes] = ..., timestamp: _Optional[int] = ..., entry_type: _Optional[str] = ..., entry: _Optional[bytes] = ..., base: _Optional[bytes] = ..., target: _Optional[bytes] = ..., tag: _Optional[bytes] = ..., link_address: _Optional[bytes] = ...) -> None: ...

class AgentInfo(_message.Message):
    __slots__ = ("agent", "encryption_key", "username", "lobby_address", "dht_address", "timestamp", "expires_at", "tls_certificate", "olm_identity_key", "olm_fallback_key")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_KEY_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    LOBBY_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DHT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    TLS_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    OLM_IDENTITY_KEY_FIELD_NUMBER: _ClassVar[int]
    OLM_FALLBACK_KEY_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    encryption_key: bytes
    username: str
    lobby_address: str
    dht_address: str
    timestamp: int
    expires_at: int
    tls_certificate: bytes
    olm_identity_key: bytes
    olm_fallback_key: bytes
    def __init__(self, agent: _Optional[bytes] = ..., encryption_key: _Optional[bytes] = ..., username: _Optional[str] = ..., lobby_address: _Optional[str] = ..., dht_address: _Optional[str] = ..., timestamp: _Optional[int] = ..., expires_at: _Optional[int] = ..., tls_certificate: _Optional[bytes] = ..., olm_identity_key: _Optional[bytes] = ..., olm_fallback_key: _Optional[bytes] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("address", "create")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    address: bytes
    create: _common_pb2.Signed
    def __init__(self, address: _Optional[bytes] = ..., create: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("node_id", "address", "spaces", "timestamp", "public_key", "signature", "tls_certificate", "claims")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SPACES_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    TLS_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    address: str
    spaces: _containers.RepeatedScalarFieldContainer[bytes]
    timestamp: int
    public_key: bytes
    signature: bytes
    tls_certificate: bytes
    claims: _containers.RepeatedCompositeFieldContainer[SpaceClaim]
    def __init__(self, node_id: _Optional[bytes] = ..., address: _Optional[str] = ..., spaces: _Optional[_Iterable[bytes]] = ..., timestamp: _Optional[int] = ..., public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., tls_certificate: _Optional[bytes] = ..., claims: _Optional[_Iterable[_Union[SpaceClaim, _Mapping]]] = ...) -> None: ...

class SpaceClaim(_message.Message):
    __slots__ = ("space", "agent", "timestamp", "signature")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    space: bytes
    agent: bytes
    timestamp: int
    signature: bytes
    def __init__(self, space: _Optional[bytes] = ..., agent: _Optional[bytes] = ..., timestamp: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class CallerProof(_message.Message):
    __slots__ = ("node_id", "audience", "method", "timestamp", "nonce", "signature")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    audience: bytes
    method: str
    timestamp: int
    nonce: bytes
    signature: bytes
    def __init__(self, node_id: _Optional[bytes] = ..., audience: _Optional[bytes] = ..., method: _Optional[str] = ..., timestamp: _Optional[int] = ..., nonce: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("op", "local_only")
    OP_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ONLY_FIELD_NUMBER: _ClassVar[int]
    op: _common_pb2.Signed
    local_only: bool
    def __init__(self, op: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ..., local_only: _Optional[bool] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("address", "op_hash", "stored", "holders")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    OP_HASH_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    HOLDERS_FIELD_NUMBER: _ClassVar[int]
    address: bytes
    op_hash: bytes
    stored: int
    holders: int
    def __init__(self, address: _Optional[bytes] = ..., op_hash: _Optional[bytes] = ..., stored: _Optional[int] = ..., holders: _Optional[int] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("space", "address", "local_only")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ONLY_FIELD_NUMBER: _ClassVar[int]
    space: bytes
    address: bytes
    local_only: bool
    def __init__(self, space: _Optional[bytes] = ..., address: _Optional[bytes] = ..., local_only: _Optional[bool] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "op")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    found: bool
    op: _common_pb2.Signed
    def __init__(self, found: _Optional[bool] = ..., op: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...

class GetLinksRequest(_message.Message):
    __slots__ = ("space", "base", "tag_prefix", "local_only", "with_targets", "holders_only")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    TAG_PREFIX_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ONLY_FIELD_NUMBER: _ClassVar[int]
    WITH_TARGETS_FIELD_NUMBER: _ClassVar[int]
    HOLDERS_ONLY_FIELD_NUMBER: _ClassVar[int]
    space: bytes
    base: bytes
    tag_prefix: bytes
    local_only: bool
    with_targets: bool
    holders_only: bool
    def __init__(self, space: _Optional[bytes] = ..., base: _Optional[bytes] = ..., tag_prefix: _Optional[bytes] = ..., local_only: _Optional[bool] = ..., with_targets: _Optional[bool] = ..., holders_only: _Optional[bool] = ...) -> None: ...

class GetLinksResponse(_message.Message):
    __slots__ = ("links", "deleted", "deletes", "targets")
    LINKS_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    DELETES_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[Link]
    deleted: _containers.RepeatedScalarFieldContainer[bytes]
    deletes: _containers.RepeatedCompositeFieldContainer[_common_pb2.Signed]
    targets: _containers.RepeatedCompositeFieldContainer[_common_pb2.Signed]
    def __init__(self, links: _Optional[_Iterable[_Union[Link, _Mapping]]] = ..., deleted: _Optional[_Iterable[bytes]] = ..., deletes: _Optional[_Iterable[_Union[_common_pb2.Signed, _Mapping]]] = ..., targets: _Optional[_Iterable[_Union[_common_pb2.Signed, _Mapping]]] = ...) -> None: ...

class JoinSpaceRequest(_message.Message):
    __slots__ = ("space", "agent", "template", "properties", "updates", "claim")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    space: bytes
    agent: bytes
    template: str
    properties: _common_pb2.GroupProperties
    updates: _containers.RepeatedCompositeFieldContainer[_common_pb2.Signed]
    claim: SpaceClaim
    def __init__(self, space: _Optional[bytes] = ..., agent: _Optional[bytes] = ..., template: _Optional[str] = ..., properties: _Optional[_Union[_common_pb2.GroupProperties, _Mapping]] = ..., updates: _Optional[_Iterable[_Union[_common_pb2.Signed, _Mapping]]] = ..., claim: _Optional[_Union[SpaceClaim, _Mapping]] = ...) -> None: ...

class JoinSpaceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LeaveSpaceRequest(_message.Message):
    __slots__ = ("space", "agent")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    space: bytes
    agent: bytes
    def __init__(self, space: _Optional[bytes] = ..., agent: _Optional[bytes] = ...) -> None: ...

class LeaveSpaceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSpacesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Space(_message.Message):
    __slots__ = ("space", "template", "properties", "agents", "ops", "members", "admins", "update_seq", "update_head", "name", "sync", "nodes", "claims")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    ADMINS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SEQ_FIELD_NUMBER: _ClassVar[int]
    UPDATE_HEAD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    space: bytes
    template: str
    properties: _common_pb2.GroupProperties
    agents: _containers.RepeatedScalarFieldContainer[bytes]
    ops: int
    members: _containers.RepeatedScalarFieldContainer[bytes]
    admins: _containers.RepeatedScalarFieldContainer[bytes]
    update_seq: int
    update_head: bytes
    name: str
    sync: SyncStats
    nodes: _containers.RepeatedScalarFieldContainer[bytes]
    claims: _containers.RepeatedCompositeFieldContainer[SpaceClaim]
    def __init__(self, space: _Optional[bytes] = ..., template: _Optional[str] = ..., properties: _Optional[_Union[_common_pb2.GroupProperties, _Mapping]] = ..., agents: _Optional[_Iterable[bytes]] = ..., ops: _Optional[int] = ..., members: _Optional[_Iterable[bytes]] = ..., admins: _Optional[_Iterable[bytes]] = ..., update_seq: _Optional[int] = ..., update_head: _Optional[bytes] = ..., name: _Optional[str] = ..., sync: _Optional[_Union[SyncStats, _Mapping]] = ..., nodes: _Optional[_Iterable[bytes]] = ..., claims: _Optional[_Iterable[_Union[SpaceClaim, _Mapping]]] = ...) -> None: ...

class SyncStats(_message.Message):
    __slots__ = ("rounds", "clean_rounds", "clean_round_bytes", "ops_repaired", "ops_refused", "last_round_micros", "last_repair_micros")
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    CLEAN_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    CLEAN_ROUND_BYTES_FIELD_NUMBER: _ClassVar[int]
    OPS_REPAIRED_FIELD_NUMBER: _ClassVar[int]
    OPS_REFUSED_FIELD_NUMBER: _ClassVar[int]
    LAST_ROUND_MICROS_FIELD_NUMBER: _ClassVar[int]
    LAST_REPAIR_MICROS_FIELD_NUMBER: _ClassVar[int]
    rounds: int
    clean_rounds: int
    clean_round_bytes: int
    ops_repaired: int
    ops_refused: int
    last_round_micros: int
    last_repair_micros: int
    def __init__(self, rounds: _Optional[int] = ..., clean_rounds: _Optional[int] = ..., clean_round_bytes: _Optional[int] = ..., ops_repaired: _Optional[int] = ..., ops_refused: _Optional[int] = ..., last_round_micros: _Optional[int] = ..., last_repair_micros: _Optional[int] = ...) -> None: ...

class ListSpacesResponse(_message.Message):
    __slots__ = ("node_id", "spaces", "peers")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SPACES_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    node_id: bytes
    spaces: _containers.RepeatedCompositeFieldContainer[Space]
    peers: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, node_id: _Optional[bytes] = ..., spaces: _Optional[_Iterable[_Union[Space, _Mapping]]] = ..., peers: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class ExchangePeersRequest(_message.Message):
    __slots__ = ("known",)
    FROM_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    known: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, known: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ..., **kwargs) -> None: ...

class ExchangePeersResponse(_message.Message):
    __slots__ = ("node", "known")
    NODE_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    node: NodeInfo
    known: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    def __init__(self, node: _Optional[_Union[NodeInfo, _Mapping]] = ..., known: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ...) -> None: ...

class SyncSummaryRequest(_message.Message):
    __slots__ = ("space", "node_id", "digests", "counts", "start_after")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    space: bytes
    node_id: bytes
    digests: bytes
    counts: _containers.RepeatedScalarFieldContainer[int]
    start_after: bytes
    def __init__(self, space: _Optional[bytes] = ..., node_id: _Optional[bytes] = ..., digests: _Optional[bytes] = ..., counts: _Optional[_Iterable[int]] = ..., start_after: _Optional[bytes] = ...) -> None: ...

class SyncSummaryResponse(_message.Message):
    __slots__ = ("op_hashes", "truncated", "differing")
    OP_HASHES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    DIFFERING_FIELD_NUMBER: _ClassVar[int]
    op_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    truncated: bool
    differing: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, op_hashes: _Optional[_Iterable[bytes]] = ..., truncated: _Optional[bool] = ..., differing: _Optional[_Iterable[int]] = ...) -> None: ...

class FetchOpsRequest(_message.Message):
    __slots__ = ("space", "op_hashes")
    SPACE_FIELD_NUMBER: _ClassVar[int]
    OP_HASHES_FIELD_NUMBER: _ClassVar[int]
    space: bytes
    op_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, space: _Optional[bytes] = ..., op_hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class FetchOpsResponse(_message.Message):
    __slots__ = ("ops",)
    OPS_FIELD_NUMBER: _ClassVar[int]
    ops: _containers.RepeatedCompositeFieldContainer[_common_pb2.Signed]
    def __init__(self, ops: _Optional[_Iterable[_Union[_common_pb2.Signed, _Mapping]]] = ...) -> None: ...
