from kizuna.v1 import common_pb2 as _common_pb2
from kizuna.v1 import group_dht_pb2 as _group_dht_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GroupState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GROUP_STATE_UNSPECIFIED: _ClassVar[GroupState]
    INVITED: _ClassVar[GroupState]
    ACCEPTED: _ClassVar[GroupState]
    BLOCKED: _ClassVar[GroupState]

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERED: _ClassVar[DeliveryStatus]
    STORED_IN_DHT: _ClassVar[DeliveryStatus]
    QUEUED: _ClassVar[DeliveryStatus]
    FAILED: _ClassVar[DeliveryStatus]
GROUP_STATE_UNSPECIFIED: GroupState
INVITED: GroupState
ACCEPTED: GroupState
BLOCKED: GroupState
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERED: DeliveryStatus
STORED_IN_DHT: DeliveryStatus
QUEUED: DeliveryStatus
FAILED: DeliveryStatus

class GroupInfo(_message.Message):
    __slots__ = ("group_uuid", "name", "creator", "initial_members", "dna_hash", "timestamp", "state", "members", "admins", "update_seq", "departed", "pinned")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    INITIAL_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    DNA_HASH_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    ADMINS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SEQ_FIELD_NUMBER: _ClassVar[int]
    DEPARTED_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    name: str
    creator: bytes
    initial_members: _containers.RepeatedScalarFieldContainer[bytes]
    dna_hash: bytes
    timestamp: int
    state: GroupState
    members: _containers.RepeatedScalarFieldContainer[bytes]
    admins: _containers.RepeatedScalarFieldContainer[bytes]
    update_seq: int
    departed: bool
    pinned: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, group_uuid: _Optional[str] = ..., name: _Optional[str] = ..., creator: _Optional[bytes] = ..., initial_members: _Optional[_Iterable[bytes]] = ..., dna_hash: _Optional[bytes] = ..., timestamp: _Optional[int] = ..., state: _Optional[_Union[GroupState, str]] = ..., members: _Optional[_Iterable[bytes]] = ..., admins: _Optional[_Iterable[bytes]] = ..., update_seq: _Optional[int] = ..., departed: _Optional[bool] = ..., pinned: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DeliveryOutcome(_message.Message):
    __slots__ = ("receiver", "status", "detail", "address", "attempts")
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    receiver: bytes
    status: DeliveryStatus
    detail: str
    address: bytes
    attempts: int
    def __init__(self, receiver: _Optional[bytes] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., detail: _Optional[str] = ..., address: _Optional[bytes] = ..., attempts: _Optional[int] = ...) -> None: ...

class MessageRecord(_message.Message):
    __slots__ = ("entry", "message_hash", "blocked_members", "warning", "receipts")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    entry: _common_pb2.MessageEntry
    message_hash: bytes
    blocked_members: _containers.RepeatedScalarFieldContainer[bytes]
    warning: str
    receipts: _containers.RepeatedCompositeFieldContainer[_common_pb2.Receipt]
    def __init__(self, entry: _Optional[_Union[_common_pb2.MessageEntry, _Mapping]] = ..., message_hash: _Optional[bytes] = ..., blocked_members: _Optional[_Iterable[bytes]] = ..., warning: _Optional[str] = ..., receipts: _Optional[_Iterable[_Union[_common_pb2.Receipt, _Mapping]]] = ...) -> None: ...

class SetUsernameRequest(_message.Message):
    __slots__ = ("username",)
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    username: str
    def __init__(self, username: _Optional[str] = ...) -> None: ...

class SetUsernameResponse(_message.Message):
    __slots__ = ("agent_info",)
    AGENT_INFO_FIELD_NUMBER: _ClassVar[int]
    agent_info: _group_dht_pb2.AgentInfo
    def __init__(self, agent_info: _Optional[_Union[_group_dht_pb2.AgentInfo, _Mapping]] = ...) -> None: ...

class GetAgentByUsernameRequest(_message.Message):
    __slots__ = ("username",)
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    username: str
    def __init__(self, username: _Optional[str] = ...) -> None: ...

class GetAgentByUsernameResponse(_message.Message):
    __slots__ = ("agent_info",)
    AGENT_INFO_FIELD_NUMBER: _ClassVar[int]
    agent_info: _group_dht_pb2.AgentInfo
    def __init__(self, agent_info: _Optional[_Union[_group_dht_pb2.AgentInfo, _Mapping]] = ...) -> None: ...

class GetGroupsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetGroupsResponse(_message.Message):
    __slots__ = ("groups", "details")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    groups: _common_pb2.Groups
    details: _containers.RepeatedCompositeFieldContainer[GroupInfo]
    def __init__(self, groups: _Optional[_Union[_common_pb2.Groups, _Mapping]] = ..., details: _Optional[_Iterable[_Union[GroupInfo, _Mapping]]] = ...) -> None: ...

class CreateGroupRequest(_message.Message):
    __slots__ = ("name", "participants")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    participants: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., participants: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateGroupResponse(_message.Message):
    __slots__ = ("group", "invites")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    INVITES_FIELD_NUMBER: _ClassVar[int]
    group: GroupInfo
    invites: _containers.RepeatedCompositeFieldContainer[DeliveryOutcome]
    def __init__(self, group: _Optional[_Union[GroupInfo, _Mapping]] = ..., invites: _Optional[_Iterable[_Union[DeliveryOutcome, _Mapping]]] = ...) -> None: ...

class GroupRequest(_message.Message):
    __slots__ = ("group_uuid",)
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    def __init__(self, group_uuid: _Optional[str] = ...) -> None: ...

class GroupResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _common_pb2.Groups
    def __init__(self, groups: _Optional[_Union[_common_pb2.Groups, _Mapping]] = ...) -> None: ...

class AgentRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    def __init__(self, agent: _Optional[bytes] = ...) -> None: ...

class GetBlockedAgentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentResponse(_message.Message):
    __slots__ = ("blocked_agents",)
    BLOCKED_AGENTS_FIELD_NUMBER: _ClassVar[int]
    blocked_agents: _common_pb2.BlockedAgents
    def __init__(self, blocked_agents: _Optional[_Union[_common_pb2.BlockedAgents, _Mapping]] = ...) -> None: ...

class SendGroupMessageRequest(_message.Message):
    __slots__ = ("group_uuid", "payload", "reply_to", "transaction_id")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    payload: str
    reply_to: bytes
    transaction_id: str
    def __init__(self, group_uuid: _Optional[str] = ..., payload: _Optional[str] = ..., reply_to: _Optional[bytes] = ..., transaction_id: _Optional[str] = ...) -> None: ...

class SendGroupMessageResponse(_message.Message):
    __slots__ = ("message", "outcomes", "lobby_calls")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    LOBBY_CALLS_FIELD_NUMBER: _ClassVar[int]
    message: MessageRecord
    outcomes: _containers.RepeatedCompositeFieldContainer[DeliveryOutcome]
    lobby_calls: int
    def __init__(self, message: _Optional[_Union[MessageRecord, _Mapping]] = ..., outcomes: _Optional[_Iterable[_Union[DeliveryOutcome, _Mapping]]] = ..., lobby_calls: _Optional[int] = ...) -> None: ...

class GetMessagesRequest(_message.Message):
    __slots__ = ("group_uuid", "page_size", "page_token", "cursor_message", "cursor_time", "newer", "author")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CURSOR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_TIME_FIELD_NUMBER: _ClassVar[int]
    NEWER_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    page_size: int
    page_token: str
    cursor_message: bytes
    cursor_time: int
    newer: bool
    author: bytes
    def __init__(self, group_uuid: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., cursor_message: _Optional[bytes] = ..., cursor_time: _Optional[int] = ..., newer: _Optional[bool] = ..., author: _Optional[bytes] = ...) -> None: ...

class GetMessagesResponse(_message.Message):
    __slots__ = ("messages", "next_page_token")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[MessageRecord]
    next_page_token: str
    def __init__(self, messages: _Optional[_Iterable[_Union[MessageRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetSourceChainRequest(_message.Message):
    __slots__ = ("from_seq", "limit")
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    from_seq: int
    limit: int
    def __init__(self, from_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GetSourceChainResponse(_message.Message):
    __slots__ = ("actions",)
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[_common_pb2.Signed]
    def __init__(self, actions: _Optional[_Iterable[_Union[_common_pb2.Signed, _Mapping]]] = ...) -> None: ...

class GetConversationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Conversation(_message.Message):
    __slots__ = ("group", "latest")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    group: GroupInfo
    latest: MessageRecord
    def __init__(self, group: _Optional[_Union[GroupInfo, _Mapping]] = ..., latest: _Optional[_Union[MessageRecord, _Mapping]] = ...) -> None: ...

class GetConversationsResponse(_message.Message):
    __slots__ = ("conversations",)
    CONVERSATIONS_FIELD_NUMBER: _ClassVar[int]
    conversations: _containers.RepeatedCompositeFieldContainer[Conversation]
    def __init__(self, conversations: _Optional[_Iterable[_Union[Conversation, _Mapping]]] = ...) -> None: ...

class MembersRequest(_message.Message):
    __slots__ = ("group_uuid", "participants")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    participants: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group_uuid: _Optional[str] = ..., participants: _Optional[_Iterable[str]] = ...) -> None: ...

class RenameGroupRequest(_message.Message):
    __slots__ = ("group_uuid", "name")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    name: str
    def __init__(self, group_uuid: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GroupUpdateResponse(_message.Message):
    __slots__ = ("group", "outcomes")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    group: GroupInfo
    outcomes: _containers.RepeatedCompositeFieldContainer[DeliveryOutcome]
    def __init__(self, group: _Optional[_Union[GroupInfo, _Mapping]] = ..., outcomes: _Optional[_Iterable[_Union[DeliveryOutcome, _Mapping]]] = ...) -> None: ...

class MarkReadRequest(_message.Message):
    __slots__ = ("group_uuid", "message_hashes")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_HASHES_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    message_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, group_uuid: _Optional[str] = ..., message_hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MarkReadResponse(_message.Message):
    __slots__ = ("marked",)
    MARKED_FIELD_NUMBER: _ClassVar[int]
    marked: int
    def __init__(self, marked: _Optional[int] = ...) -> None: ...

class SetTypingRequest(_message.Message):
    __slots__ = ("group_uuid", "typing")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    TYPING_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    typing: bool
    def __init__(self, group_uuid: _Optional[str] = ..., typing: _Optional[bool] = ...) -> None: ...

class SetTypingResponse(_message.Message):
    __slots__ = ("told",)
    TOLD_FIELD_NUMBER: _ClassVar[int]
    told: int
    def __init__(self, told: _Optional[int] = ...) -> None: ...

class SignalsRequest(_message.Message):
    __slots__ = ("since",)
    SINCE_FIELD_NUMBER: _ClassVar[int]
    since: int
    def __init__(self, since: _Optional[int] = ...) -> None: ...

class AckSignalsRequest(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class AckSignalsResponse(_message.Message):
    __slots__ = ("kept",)
    KEPT_FIELD_NUMBER: _ClassVar[int]
    kept: int
    def __init__(self, kept: _Optional[int] = ...) -> None: ...

class Signal(_message.Message):
    __slots__ = ("ready", "message", "invite", "delivery", "group_update", "receipt", "typing", "seq", "emitted_at")
    READY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    INVITE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    GROUP_UPDATE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    TYPING_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    ready: Ready
    message: MessageSignal
    invite: InviteSignal
    delivery: DeliverySignal
    group_update: GroupUpdateSignal
    receipt: ReceiptSignal
    typing: TypingSignal
    seq: int
    emitted_at: int
    def __init__(self, ready: _Optional[_Union[Ready, _Mapping]] = ..., message: _Optional[_Union[MessageSignal, _Mapping]] = ..., invite: _Optional[_Union[InviteSignal, _Mapping]] = ..., delivery: _Optional[_Union[DeliverySignal, _Mapping]] = ..., group_update: _Optional[_Union[GroupUpdateSignal, _Mapping]] = ..., receipt: _Optional[_Union[ReceiptSignal, _Mapping]] = ..., typing: _Optional[_Union[TypingSignal, _Mapping]] = ..., seq: _Optional[int] = ..., emitted_at: _Optional[int] = ...) -> None: ...

class GroupUpdateSignal(_message.Message):
    __slots__ = ("group", "update", "author")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    group: GroupInfo
    update: _common_pb2.GroupUpdate
    author: bytes
    def __init__(self, group: _Optional[_Union[GroupInfo, _Mapping]] = ..., update: _Optional[_Union[_common_pb2.GroupUpdate, _Mapping]] = ..., author: _Optional[bytes] = ...) -> None: ...

class ReceiptSignal(_message.Message):
    __slots__ = ("receipts",)
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[_common_pb2.Receipt]
    def __init__(self, receipts: _Optional[_Iterable[_Union[_common_pb2.Receipt, _Mapping]]] = ...) -> None: ...

class TypingSignal(_message.Message):
    __slots__ = ("typing",)
    TYPING_FIELD_NUMBER: _ClassVar[int]
    typing: _common_pb2.Typing
    def __init__(self, typing: _Optional[_Union[_common_pb2.Typing, _Mapping]] = ...) -> None: ...

class Ready(_message.Message):
    __slots__ = ("agent", "replayed_to")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_TO_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    replayed_to: int
    def __init__(self, agent: _Optional[bytes] = ..., replayed_to: _Optional[int] = ...) -> None: ...

class MessageSignal(_message.Message):
    __slots__ = ("message", "first_message")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIRST_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: MessageRecord
    first_message: bool
    def __init__(self, message: _Optional[_Union[MessageRecord, _Mapping]] = ..., first_message: _Optional[bool] = ...) -> None: ...

class InviteSignal(_message.Message):
    __slots__ = ("group", "inviter")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    INVITER_FIELD_NUMBER: _ClassVar[int]
    group: GroupInfo
    inviter: bytes
    def __init__(self, group: _Optional[_Union[GroupInfo, _Mapping]] = ..., inviter: _Optional[bytes] = ...) -> None: ...

class DeliverySignal(_message.Message):
    __slots__ = ("message_hash", "group_uuid", "outcome")
    MESSAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    message_hash: bytes
    group_uuid: str
    outcome: DeliveryOutcome
    def __init__(self, message_hash: _Optional[bytes] = ..., group_uuid: _Optional[str] = ..., outcome: _Optional[_Union[DeliveryOutcome, _Mapping]] = ...) -> None: ...

class SyncInboxRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SyncInboxResponse(_message.Message):
    __slots__ = ("invites", "messages")
    INVITES_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    invites: int
    messages: int
    def __init__(self, invites: _Optional[int] = ..., messages: _Optional[int] = ...) -> None: ...

class DueReceipt(_message.Message):
    __slots__ = ("author", "space", "receipt")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    author: bytes
    space: bytes
    receipt: _common_pb2.Receipt
    def __init__(self, author: _Optional[bytes] = ..., space: _Optional[bytes] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class OutboxItem(_message.Message):
    __slots__ = ("author", "receiver", "kind", "signed", "group_uuid", "space", "attempts", "queued_at", "next_attempt", "signed_hash")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIGNED_FIELD_NUMBER: _ClassVar[int]
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    SPACE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SIGNED_HASH_FIELD_NUMBER: _ClassVar[int]
    author: bytes
    receiver: bytes
    kind: str
    signed: _common_pb2.Signed
    group_uuid: str
    space: bytes
    attempts: int
    queued_at: int
    next_attempt: int
    signed_hash: bytes
    def __init__(self, author: _Optional[bytes] = ..., receiver: _Optional[bytes] = ..., kind: _Optional[str] = ..., signed: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ..., group_uuid: _Optional[str] = ..., space: _Optional[bytes] = ..., attempts: _Optional[int] = ..., queued_at: _Optional[int] = ..., next_attempt: _Optional[int] = ..., signed_hash: _Optional[bytes] = ...) -> None: ...

class SendFileRequest(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: FileHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[FileHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class FileHeader(_message.Message):
    __slots__ = ("group_uuid", "payload", "reply_to", "name", "media_type", "size")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    payload: str
    reply_to: bytes
    name: str
    media_type: str
    size: int
    def __init__(self, group_uuid: _Optional[str] = ..., payload: _Optional[str] = ..., reply_to: _Optional[bytes] = ..., name: _Optional[str] = ..., media_type: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class FetchFileRequest(_message.Message):
    __slots__ = ("group_uuid", "message_hash", "attachment")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    message_hash: bytes
    attachment: int
    def __init__(self, group_uuid: _Optional[str] = ..., message_hash: _Optional[bytes] = ..., attachment: _Optional[int] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("data", "offset", "size")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    size: int
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class PinRequest(_message.Message):
    __slots__ = ("group_uuid", "message_hash")
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_HASH_FIELD_NUMBER: _ClassVar[int]
    group_uuid: str
    message_hash: bytes
    def __init__(self, group_uuid: _Optional[str] = ..., message_hash: _Optional[bytes] = ...) -> None: ...

class RemoteCall(_message.Message):
    __slots__ = ("envelope", "item_signature")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ITEM_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Signed
    item_signature: bytes
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ..., item_signature: _Optional[bytes] = ...) -> None: ...

class ReceiveInviteRequest(_message.Message):
    __slots__ = ("to_agent", "invite")
    TO_AGENT_FIELD_NUMBER: _ClassVar[int]
    INVITE_FIELD_NUMBER: _ClassVar[int]
    to_agent: bytes
    invite: _common_pb2.Signed
    def __init__(self, to_agent: _Optional[bytes] = ..., invite: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...

class ReceiveInviteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReceiveGroupMessageRequest(_message.Message):
    __slots__ = ("to_agent", "message")
    TO_AGENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    to_agent: bytes
    message: _common_pb2.Signed
    def __init__(self, to_agent: _Optional[bytes] = ..., message: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...

class ReceiveGroupMessageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReceiveGroupMessagesRequest(_message.Message):
    __slots__ = ("to_agents", "message")
    TO_AGENTS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    to_agents: _containers.RepeatedScalarFieldContainer[bytes]
    message: _common_pb2.Signed
    def __init__(self, to_agents: _Optional[_Iterable[bytes]] = ..., message: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...

class ReceiverResult(_message.Message):
    __slots__ = ("agent", "code", "message")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    code: str
    message: str
    def __init__(self, agent: _Optional[bytes] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ReceiveGroupMessagesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReceiverResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReceiverResult, _Mapping]]] = ...) -> None: ...

class ReceiveInvitesRequest(_message.Message):
    __slots__ = ("to_agents", "invite")
    TO_AGENTS_FIELD_NUMBER: _ClassVar[int]
    INVITE_FIELD_NUMBER: _ClassVar[int]
    to_agents: _containers.RepeatedScalarFieldContainer[bytes]
    invite: _common_pb2.Signed
    def __init__(self, to_agents: _Optional[_Iterable[bytes]] = ..., invite: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...

class ReceiveInvitesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReceiverResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReceiverResult, _Mapping]]] = ...) -> None: ...

class ReceiveGroupUpdateRequest(_message.Message):
    __slots__ = ("to_agent", "update")
    TO_AGENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    to_agent: bytes
    update: _common_pb2.Signed
    def __init__(self, to_agent: _Optional[bytes] = ..., update: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...

class ReceiveGroupUpdateResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReceiveReceiptRequest(_message.Message):
    __slots__ = ("to_agent", "receipts")
    TO_AGENT_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    to_agent: bytes
    receipts: _common_pb2.Signed
    def __init__(self, to_agent: _Optional[bytes] = ..., receipts: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...

class ReceiveReceiptResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReceiveReceiptsRequest(_message.Message):
    __slots__ = ("to_agent", "receipts")
    TO_AGENT_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    to_agent: bytes
    receipts: _containers.RepeatedCompositeFieldContainer[_common_pb2.Signed]
    def __init__(self, to_agent: _Optional[bytes] = ..., receipts: _Optional[_Iterable[_Union[_common_pb2.Signed, _Mapping]]] = ...) -> None: ...

class ReceiveReceiptsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReceiveTypingRequest(_message.Message):
    __slots__ = ("to_agent", "typing")
    TO_AGENT_FIELD_NUMBER: _ClassVar[int]
    TYPING_FIELD_NUMBER: _ClassVar[int]
    to_agent: bytes
    typing: _common_pb2.Signed
    def __init__(self, to_agent: _Optional[bytes] = ..., typing: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...

class ReceiveTypingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReceiveGroupKeysRequest(_message.Message):
    __slots__ = ("to_agents", "key_shares")
    TO_AGENTS_FIELD_NUMBER: _ClassVar[int]
    KEY_SHARES_FIELD_NUMBER: _ClassVar[int]
    to_agents: _containers.RepeatedScalarFieldContainer[bytes]
    key_shares: _containers.RepeatedCompositeFieldContainer[_common_pb2.Signed]
    def __init__(self, to_agents: _Optional[_Iterable[bytes]] = ..., key_shares: _Optional[_Iterable[_Union[_common_pb2.Signed, _Mapping]]] = ...) -> None: ...

class ReceiveGroupKeysResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReceiverResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReceiverResult, _Mapping]]] = ...) -> None: ...

class RequestGroupKeyRequest(_message.Message):
    __slots__ = ("to_agent", "group_uuid", "session_id")
    TO_AGENT_FIELD_NUMBER: _ClassVar[int]
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    to_agent: bytes
    group_uuid: str
    session_id: str
    def __init__(self, to_agent: _Optional[bytes] = ..., group_uuid: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class RequestGroupKeyResponse(_message.Message):
    __slots__ = ("key_share",)
    KEY_SHARE_FIELD_NUMBER: _ClassVar[int]
    key_share: _common_pb2.Signed
    def __init__(self, key_share: _Optional[_Union[_common_pb2.Signed, _Mapping]] = ...) -> None: ...
