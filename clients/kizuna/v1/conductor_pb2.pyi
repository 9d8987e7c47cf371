from kizuna.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Agent(_message.Message):
    __slots__ = ("agent", "encryption_key", "name", "created", "olm_identity_key", "olm_fallback_key")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    OLM_IDENTITY_KEY_FIELD_NUMBER: _ClassVar[int]
    OLM_FALLBACK_KEY_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    encryption_key: bytes
    name: str
    created: int
    olm_identity_key: bytes
    olm_fallback_key: bytes
    def __init__(self, agent: _Optional[bytes] = ..., encryption_key: _Optional[bytes] = ..., name: _Optional[str] = ..., created: _Optional[int] = ..., olm_identity_key: _Optional[bytes] = ..., olm_fallback_key: _Optional[bytes] = ...) -> None: ...

class Cell(_message.Message):
    __slots__ = ("agent", "dna_hash", "template", "properties", "created")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    DNA_HASH_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    dna_hash: bytes
    template: str
    properties: _common_pb2.GroupProperties
    created: int
    def __init__(self, agent: _Optional[bytes] = ..., dna_hash: _Optional[bytes] = ..., template: _Optional[str] = ..., properties: _Optional[_Union[_common_pb2.GroupProperties, _Mapping]] = ..., created: _Optional[int] = ...) -> None: ...

class CreateAgentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CreateAgentResponse(_message.Message):
    __slots__ = ("agent", "app_token", "lobby_cell")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    APP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LOBBY_CELL_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    app_token: str
    lobby_cell: Cell
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ..., app_token: _Optional[str] = ..., lobby_cell: _Optional[_Union[Cell, _Mapping]] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    def __init__(self, agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ...) -> None: ...

class CloneDnaRequest(_message.Message):
    __slots__ = ("agent", "template", "properties", "updates")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    template: str
    properties: _common_pb2.GroupProperties
    updates: _containers.RepeatedCompositeFieldContainer[_common_pb2.Signed]
    def __init__(self, agent: _Optional[bytes] = ..., template: _Optional[str] = ..., properties: _Optional[_Union[_common_pb2.GroupProperties, _Mapping]] = ..., updates: _Optional[_Iterable[_Union[_common_pb2.Signed, _Mapping]]] = ...) -> None: ...

class CloneDnaResponse(_message.Message):
    __slots__ = ("cell",)
    CELL_FIELD_NUMBER: _ClassVar[int]
    cell: Cell
    def __init__(self, cell: _Optional[_Union[Cell, _Mapping]] = ...) -> None: ...

class ListCellsRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    def __init__(self, agent: _Optional[bytes] = ...) -> None: ...

class ListCellsResponse(_message.Message):
    __slots__ = ("cells",)
    CELLS_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedCompositeFieldContainer[Cell]
    def __init__(self, cells: _Optional[_Iterable[_Union[Cell, _Mapping]]] = ...) -> None: ...

class SignRequest(_message.Message):
    __slots__ = ("agent", "data", "app_token")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    APP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    data: bytes
    app_token: str
    def __init__(self, agent: _Optional[bytes] = ..., data: _Optional[bytes] = ..., app_token: _Optional[str] = ...) -> None: ...

class SignResponse(_message.Message):
    __slots__ = ("signature",)
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signature: bytes
    def __init__(self, signature: _Optional[bytes] = ...) -> None: ...

class SignBatchRequest(_message.Message):
    __slots__ = ("agent", "data", "app_token")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    APP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    data: _containers.RepeatedScalarFieldContainer[bytes]
    app_token: str
    def __init__(self, agent: _Optional[bytes] = ..., data: _Optional[_Iterable[bytes]] = ..., app_token: _Optional[str] = ...) -> None: ...

class SignBatchResponse(_message.Message):
    __slots__ = ("signatures",)
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    signatures: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, signatures: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ResolveTokenRequest(_message.Message):
    __slots__ = ("app_token",)
    APP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    app_token: str
    def __init__(self, app_token: _Optional[str] = ...) -> None: ...

class ResolveTokenResponse(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class DecryptRequest(_message.Message):
    __slots__ = ("agent", "sealed", "aad")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    AAD_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    sealed: _common_pb2.SealedBox
    aad: bytes
    def __init__(self, agent: _Optional[bytes] = ..., sealed: _Optional[_Union[_common_pb2.SealedBox, _Mapping]] = ..., aad: _Optional[bytes] = ...) -> None: ...

class DecryptResponse(_message.Message):
    __slots__ = ("plaintext",)
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    def __init__(self, plaintext: _Optional[bytes] = ...) -> None: ...

class DecryptItem(_message.Message):
    __slots__ = ("sealed", "aad")
    SEALED_FIELD_NUMBER: _ClassVar[int]
    AAD_FIELD_NUMBER: _ClassVar[int]
    sealed: _common_pb2.SealedBox
    aad: bytes
    def __init__(self, sealed: _Optional[_Union[_common_pb2.SealedBox, _Mapping]] = ..., aad: _Optional[bytes] = ...) -> None: ...

class DecryptBatchRequest(_message.Message):
    __slots__ = ("agent", "items")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    items: _containers.RepeatedCompositeFieldContainer[DecryptItem]
    def __init__(self, agent: _Optional[bytes] = ..., items: _Optional[_Iterable[_Union[DecryptItem, _Mapping]]] = ...) -> None: ...

class DecryptResult(_message.Message):
    __slots__ = ("plaintext", "error")
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    error: str
    def __init__(self, plaintext: _Optional[bytes] = ..., error: _Optional[str] = ...) -> None: ...

class DecryptBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DecryptResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DecryptResult, _Mapping]]] = ...) -> None: ...

class AppToken(_message.Message):
    __slots__ = ("token_id", "agent", "created", "revoked")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    agent: bytes
    created: int
    revoked: bool
    def __init__(self, token_id: _Optional[str] = ..., agent: _Optional[bytes] = ..., created: _Optional[int] = ..., revoked: _Optional[bool] = ...) -> None: ...

class IssueAppTokenRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    def __init__(self, agent: _Optional[bytes] = ...) -> None: ...

class IssueAppTokenResponse(_message.Message):
    __slots__ = ("app_token", "token")
    APP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    app_token: str
    token: AppToken
    def __init__(self, app_token: _Optional[str] = ..., token: _Optional[_Union[AppToken, _Mapping]] = ...) -> None: ...

class ListAppTokensRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    def __init__(self, agent: _Optional[bytes] = ...) -> None: ...

class ListAppTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[AppToken]
    def __init__(self, tokens: _Optional[_Iterable[_Union[AppToken, _Mapping]]] = ...) -> None: ...

class RevokeAppTokenRequest(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class RevokeAppTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: AppToken
    def __init__(self, token: _Optional[_Union[AppToken, _Mapping]] = ...) -> None: ...

class DeleteCloneCellRequest(_message.Message):
    __slots__ = ("agent", "dna_hash")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    DNA_HASH_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    dna_hash: bytes
    def __init__(self, agent: _Optional[bytes] = ..., dna_hash: _Optional[bytes] = ...) -> None: ...

class DeleteCloneCellResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KeyHolder(_message.Message):
    __slots__ = ("agent", "olm_identity_key", "olm_fallback_key")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    OLM_IDENTITY_KEY_FIELD_NUMBER: _ClassVar[int]
    OLM_FALLBACK_KEY_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    olm_identity_key: bytes
    olm_fallback_key: bytes
    def __init__(self, agent: _Optional[bytes] = ..., olm_identity_key: _Optional[bytes] = ..., olm_fallback_key: _Optional[bytes] = ...) -> None: ...

class EncryptGroupMessageRequest(_message.Message):
    __slots__ = ("agent", "group_uuid", "plaintext", "receivers", "app_token")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    RECEIVERS_FIELD_NUMBER: _ClassVar[int]
    APP_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    group_uuid: str
    plaintext: bytes
    receivers: _containers.RepeatedCompositeFieldContainer[KeyHolder]
    app_token: str
    def __init__(self, agent: _Optional[bytes] = ..., group_uuid: _Optional[str] = ..., plaintext: _Optional[bytes] = ..., receivers: _Optional[_Iterable[_Union[KeyHolder, _Mapping]]] = ..., app_token: _Optional[str] = ...) -> None: ...

class EncryptGroupMessageResponse(_message.Message):
    __slots__ = ("encrypted", "key_shares", "rotated")
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    KEY_SHARES_FIELD_NUMBER: _ClassVar[int]
    ROTATED_FIELD_NUMBER: _ClassVar[int]
    encrypted: _common_pb2.EncryptedPayload
    key_shares: _containers.RepeatedCompositeFieldContainer[_common_pb2.Signed]
    rotated: bool
    def __init__(self, encrypted: _Optional[_Union[_common_pb2.EncryptedPayload, _Mapping]] = ..., key_shares: _Optional[_Iterable[_Union[_common_pb2.Signed, _Mapping]]] = ..., rotated: _Optional[bool] = ...) -> None: ...

class GroupCiphertext(_message.Message):
    __slots__ = ("agent", "group_uuid", "sender", "encrypted")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    group_uuid: str
    sender: bytes
    encrypted: _common_pb2.EncryptedPayload
    def __init__(self, agent: _Optional[bytes] = ..., group_uuid: _Optional[str] = ..., sender: _Optional[bytes] = ..., encrypted: _Optional[_Union[_common_pb2.EncryptedPayload, _Mapping]] = ...) -> None: ...

class DecryptGroupMessagesRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[GroupCiphertext]
    def __init__(self, items: _Optional[_Iterable[_Union[GroupCiphertext, _Mapping]]] = ...) -> None: ...

class GroupPlaintext(_message.Message):
    __slots__ = ("plaintext", "error", "missing_key")
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MISSING_KEY_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    error: str
    missing_key: bool
    def __init__(self, plaintext: _Optional[bytes] = ..., error: _Optional[str] = ..., missing_key: _Optional[bool] = ...) -> None: ...

class DecryptGroupMessagesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GroupPlaintext]
    def __init__(self, results: _Optional[_Iterable[_Union[GroupPlaintext, _Mapping]]] = ...) -> None: ...

class ImportGroupKeysRequest(_message.Message):
    __slots__ = ("agent", "key_shares")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    KEY_SHARES_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    key_shares: _containers.RepeatedCompositeFieldContainer[_common_pb2.Signed]
    def __init__(self, agent: _Optional[bytes] = ..., key_shares: _Optional[_Iterable[_Union[_common_pb2.Signed, _Mapping]]] = ...) -> None: ...

class ImportedKey(_message.Message):
    __slots__ = ("group_uuid", "sender", "session_id", "error")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    sender: bytes
    session_id: str
    error: str
    def __init__(self, group_uuid: _Optional[str] = ..., sender: _Optional[bytes] = ..., session_id: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ImportGroupKeysResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ImportedKey]
    def __init__(self, results: _Optional[_Iterable[_Union[ImportedKey, _Mapping]]] = ...) -> None: ...

class ShareGroupKeyRequest(_message.Message):
    __slots__ = ("agent", "group_uuid", "session_id", "receiver")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    group_uuid: str
    session_id: str
    receiver: KeyHolder
    def __init__(self, agent: _Optional[bytes] = ..., group_uuid: _Optional[str] = ..., session_id: _Optional[str] = ..., receiver: _Optional[_Union[KeyHolder, _Mapping]] = ...) -> None: ...

class ShareGroupKeyResponse(_message.Message):
    __slots__ = ("key_share",)
    KEY_SHARE_FIELD_NUMBER: _ClassVar[int]
    key_share: _common_pb2.Signed
    def __init__(self, key_share: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...

class GroupSessionInfo(_message.Message):
    __slots__ = ("group_uuid", "sender", "session_id", "outbound", "message_index", "created", "shared_with")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OUTBOUND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_INDEX_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    SHARED_WITH_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    sender: bytes
    session_id: str
    outbound: bool
    message_index: int
    created: int
    shared_with: int
    def __init__(self, group_uuid: _Optional[str] = ..., sender: _Optional[bytes] = ..., session_id: _Optional[str] = ..., outbound: _Optional[bool] = ..., message_index: _Optional[int] = ..., created: _Optional[int] = ..., shared_with: _Optional[int] = ...) -> None: ...

class ListGroupSessionsRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    def __init__(self, agent: _Optional[bytes] = ...) -> None: ...

class ListGroupSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[GroupSessionInfo]
    def __init__(self, sessions: _Optional[_Iterable[_Union[GroupSessionInfo, _Mapping]]] = ...) -> None: ...

class StoredGroupSession(_message.Message):
    __slots__ = ("info", "pickle", "own_pickle", "entitled")
    INFO_FIELD_NUMBER: _ClassVar[int]
    PICKLE_FIELD_NUMBER: _ClassVar[int]
    OWN_PICKLE_FIELD_NUMBER: _ClassVar[int]
    ENTITLED_FIELD_NUMBER: _ClassVar[int]
    info: GroupSessionInfo
    pickle: str
    own_pickle: str
    entitled: _containers.RepeatedCompositeFieldContainer[Entitlement]
    def __init__(self, info: _Optional[_Union[GroupSessionInfo, _Mapping]] = ..., pickle: _Optional[str] = ..., own_pickle: _Optional[str] = ..., entitled: _Optional[_Iterable[_Union[Entitlement, _Mapping]]] = ...) -> None: ...

class Entitlement(_message.Message):
    __slots__ = ("agent", "first_index")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    first_index: int
    def __init__(self, agent: _Optional[bytes] = ..., first_index: _Optional[int] = ...) -> None: ...

class StoredOlmSession(_message.Message):
    __slots__ = ("peer", "peer_identity_key", "pickle", "last_used")
    PEER_FIELD_NUMBER: _ClassVar[int]
    PEER_IDENTITY_KEY_FIELD_NUMBER: _ClassVar[int]
    PICKLE_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_FIELD_NUMBER: _ClassVar[int]
    peer: bytes
    peer_identity_key: bytes
    pickle: str
    last_used: int
    def __init__(self, peer: _Optional[bytes] = ..., peer_identity_key: _Optional[bytes] = ..., pickle: _Optional[str] = ..., last_used: _Optional[int] = ...) -> None: ...
