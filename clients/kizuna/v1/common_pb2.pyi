from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Signed(_message.Message):
    __slots__ = ("body", "signature", "author")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    author: bytes
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., author: _Optional[bytes] = ...) -> None: ...

class GroupProperties(_message.Message):
    __slots__ = ("group_uuid", "name", "creator", "initial_members", "network_seed")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    INITIAL_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_SEED_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    name: str
    creator: bytes
    initial_members: _containers.RepeatedScalarFieldContainer[bytes]
    network_seed: str
    def __init__(self, group_uuid: _Optional[str] = ..., name: _Optional[str] = ..., creator: _Optional[bytes] = ..., initial_members: _Optional[_Iterable[bytes]] = ..., network_seed: _Optional[str] = ...) -> None: ...

class Invite(_message.Message):
    __slots__ = ("group_uuid", "initial_members", "timestamp", "properties", "dna_hash", "updates")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    INITIAL_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    DNA_HASH_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    initial_members: _containers.RepeatedScalarFieldContainer[bytes]
    timestamp: int
    properties: GroupProperties
    dna_hash: bytes
    updates: _containers.RepeatedCompositeFieldContainer[Signed]
    def __init__(self, group_uuid: _Optional[str] = ..., initial_members: _Optional[_Iterable[bytes]] = ..., timestamp: _Optional[int] = ..., properties: _Optional[_Union[GroupProperties, _Mapping]] = ..., dna_hash: _Optional[bytes] = ..., updates: _Optional[_Iterable[_Union[Signed, _Mapping]]] = ...) -> None: ...

class Groups(_message.Message):
    __slots__ = ("group_uuids", "blocked")
    GROUP_UUIDS_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    group_uuids: _containers.RepeatedScalarFieldContainer[str]
    blocked: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group_uuids: _Optional[_Iterable[str]] = ..., blocked: _Optional[_Iterable[str]] = ...) -> None: ...

class MessageEntry(_message.Message):
    __slots__ = ("author", "receiver", "group_uuid", "payload", "time_sent", "time_received", "reply_to", "encrypted", "attachments")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TIME_SENT_FIELD_NUMBER: _ClassVar[int]
    TIME_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    author: bytes
    receiver: _containers.RepeatedScalarFieldContainer[bytes]
    group_uuid: str
    payload: str
    time_sent: int
    time_received: int
    reply_to: bytes
    encrypted: EncryptedPayload
    attachments: _containers.RepeatedCompositeFieldContainer[FileRef]
    def __init__(self, author: _Optional[bytes] = ..., receiver: _Optional[_Iterable[bytes]] = ..., group_uuid: _Optional[str] = ..., payload: _Optional[str] = ..., time_sent: _Optional[int] = ..., time_received: _Optional[int] = ..., reply_to: _Optional[bytes] = ..., encrypted: _Optional[_Union[EncryptedPayload, _Mapping]] = ..., attachments: _Optional[_Iterable[_Union[FileRef, _Mapping]]] = ...) -> None: ...

class EncryptedPayload(_message.Message):
    __slots__ = ("session_id", "ciphertext")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    ciphertext: bytes
    def __init__(self, session_id: _Optional[str] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...

class GroupKey(_message.Message):
    __slots__ = ("group_uuid", "sender", "session_id", "session_key", "first_index")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_KEY_FIELD_NUMBER: _ClassVar[int]
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    sender: bytes
    session_id: str
    session_key: str
    first_index: int
    def __init__(self, group_uuid: _Optional[str] = ..., sender: _Optional[bytes] = ..., session_id: _Optional[str] = ..., session_key: _Optional[str] = ..., first_index: _Optional[int] = ...) -> None: ...

class KeyShare(_message.Message):
    __slots__ = ("sender", "receiver", "group_uuid", "session_id", "sender_identity_key", "olm_type", "olm_ciphertext", "timestamp")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_IDENTITY_KEY_FIELD_NUMBER: _ClassVar[int]
    OLM_TYPE_FIELD_NUMBER: _ClassVar[int]
    OLM_CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    sender: bytes
    receiver: bytes
    group_uuid: str
    session_id: str
    sender_identity_key: bytes
    olm_type: int
    olm_ciphertext: bytes
    timestamp: int
    def __init__(self, sender: _Optional[bytes] = ..., receiver: _Optional[bytes] = ..., group_uuid: _Optional[str] = ..., session_id: _Optional[str] = ..., sender_identity_key: _Optional[bytes] = ..., olm_type: _Optional[int] = ..., olm_ciphertext: _Optional[bytes] = ..., timestamp: _Optional[int] = ...) -> None: ...

class BlockedAgents(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, agents: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("seq", "prev_action", "timestamp", "author", "entry_type", "entry", "entry_hash")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PREV_ACTION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    ENTRY_TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    ENTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    prev_action: bytes
    timestamp: int
    author: bytes
    entry_type: str
    entry: bytes
    entry_hash: bytes
    def __init__(self, seq: _Optional[int] = ..., prev_action: _Optional[bytes] = ..., timestamp: _Optional[int] = ..., author: _Optional[bytes] = ..., entry_type: _Optional[str] = ..., entry: _Optional[bytes] = ..., entry_hash: _Optional[bytes] = ...) -> None: ...

class SealedBox(_message.Message):
    __slots__ = ("receiver", "ephemeral_key", "nonce", "ciphertext")
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_KEY_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    receiver: bytes
    ephemeral_key: bytes
    nonce: bytes
    ciphertext: bytes
    def __init__(self, receiver: _Optional[bytes] = ..., ephemeral_key: _Optional[bytes] = ..., nonce: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("method", "body", "timestamp", "nonce", "target")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    method: str
    body: bytes
    timestamp: int
    nonce: bytes
    target: bytes
    def __init__(self, method: _Optional[str] = ..., body: _Optional[bytes] = ..., timestamp: _Optional[int] = ..., nonce: _Optional[bytes] = ..., target: _Optional[bytes] = ...) -> None: ...

class GroupUpdate(_message.Message):
    __slots__ = ("group_uuid", "seq", "prev", "change", "subjects", "members", "admins", "name", "timestamp", "message_hash")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PREV_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    ADMINS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    seq: int
    prev: bytes
    change: str
    subjects: _containers.RepeatedScalarFieldContainer[bytes]
    members: _containers.RepeatedScalarFieldContainer[bytes]
    admins: _containers.RepeatedScalarFieldContainer[bytes]
    name: str
    timestamp: int
    message_hash: bytes
    def __init__(self, group_uuid: _Optional[str] = ..., seq: _Optional[int] = ..., prev: _Optional[bytes] = ..., change: _Optional[str] = ..., subjects: _Optional[_Iterable[bytes]] = ..., members: _Optional[_Iterable[bytes]] = ..., admins: _Optional[_Iterable[bytes]] = ..., name: _Optional[str] = ..., timestamp: _Optional[int] = ..., message_hash: _Optional[bytes] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("message_hash", "group_uuid", "receiver", "delivered_at", "read_at")
    MESSAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_FIELD_NUMBER: _ClassVar[int]
    READ_AT_FIELD_NUMBER: _ClassVar[int]
    message_hash: bytes
    group_uuid: str
    receiver: bytes
    delivered_at: int
    read_at: int
    def __init__(self, message_hash: _Optional[bytes] = ..., group_uuid: _Optional[str] = ..., receiver: _Optional[bytes] = ..., delivered_at: _Optional[int] = ..., read_at: _Optional[int] = ...) -> None: ...

class Receipts(_message.Message):
    __slots__ = ("receipts",)
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[Receipt]
    def __init__(self, receipts: _Optional[_Iterable[_Union[Receipt, _Mapping]]] = ...) -> None: ...

class Typing(_message.Message):
    __slots__ = ("group_uuid", "agent", "typing", "timestamp")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    TYPING_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    agent: bytes
    typing: bool
    timestamp: int
    def __init__(self, group_uuid: _Optional[str] = ..., agent: _Optional[bytes] = ..., typing: _Optional[bool] = ..., timestamp: _Optional[int] = ...) -> None: ...

class FileRef(_message.Message):
    __slots__ = ("name", "size", "media_type", "sha256", "key", "chunk_size", "chunks")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    media_type: str
    sha256: bytes
    key: bytes
    chunk_size: int
    chunks: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., media_type: _Optional[str] = ..., sha256: _Optional[bytes] = ..., key: _Optional[bytes] = ..., chunk_size: _Optional[int] = ..., chunks: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MessageContent(_message.Message):
    __slots__ = ("payload", "attachments")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    payload: str
    attachments: _containers.RepeatedCompositeFieldContainer[FileRef]
    def __init__(self, payload: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[FileRef, _Mapping]]] = ...) -> None: ...
