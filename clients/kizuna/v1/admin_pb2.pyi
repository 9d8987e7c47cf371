from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListOutboxRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class OutboxEntry(_message.Message):
    __slots__ = ("author", "receiver", "kind", "group_uuid", "item_hash", "queued_at", "next_attempt", "attempts", "in_flight")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    GROUP_UUID_FIELD_NUMBER: _ClassVar[int]
    ITEM_HASH_FIELD_NUMBER: _ClassVar[int]
    QUEUED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    author: bytes
    receiver: bytes
    kind: str
    group_uuid: str
    item_hash: bytes
    queued_at: int
    next_attempt: int
    attempts: int
    in_flight: bool
    def __init__(self, author: _Optional[bytes] = ..., receiver: _Optional[bytes] = ..., kind: _Optional[str] = ..., group_uuid: _Optional[str] = ..., item_hash: _Optional[bytes] = ..., queued_at: _Optional[int] = ..., next_attempt: _Optional[int] = ..., attempts: _Optional[int] = ..., in_flight: _Optional[bool] = ...) -> None: ...

class ListOutboxResponse(_message.Message):
    __slots__ = ("items", "total")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[OutboxEntry]
    total: int
    def __init__(self, items: _Optional[_Iterable[_Union[OutboxEntry, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class RetryOutboxRequest(_message.Message):
    __slots__ = ("item_hash", "receiver")
    ITEM_HASH_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    item_hash: bytes
    receiver: bytes
    def __init__(self, item_hash: _Optional[bytes] = ..., receiver: _Optional[bytes] = ...) -> None: ...

class RetryOutboxResponse(_message.Message):
    __slots__ = ("retried",)
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    retried: int
    def __init__(self, retried: _Optional[int] = ...) -> None: ...

class ListQueuedSignalsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueuedSignals(_message.Message):
    __slots__ = ("agent", "count")
    AGENT_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    agent: bytes
    count: int
    def __init__(self, agent: _Optional[bytes] = ..., count: _Optional[int] = ...) -> None: ...

class ListQueuedSignalsResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[QueuedSignals]
    def __init__(self, agents: _Optional[_Iterable[_Union[QueuedSignals, _Mapping]]] = ...) -> None: ...
