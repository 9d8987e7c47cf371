"""The one error vocabulary: domain exceptions that carry the gRPC status they map to.

Domain code raises these without importing grpc; `kizuna_node.common.rpc` turns them
into `context.abort(code, message)`, and a status that comes back from another service
arrives as the class of the same code (`error_for`), so callers test errors by class.
"""


class KizunaError(Exception):
    """A refusal the caller should see, with the name of its gRPC status code."""

    code = "UNKNOWN"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(KizunaError):
    code = "INVALID_ARGUMENT"


class NotFound(KizunaError):
    code = "NOT_FOUND"


class AlreadyExists(KizunaError):
    code = "ALREADY_EXISTS"


class PermissionDenied(KizunaError):
    code = "PERMISSION_DENIED"


class Unauthenticated(KizunaError):
    code = "UNAUTHENTICATED"


class FailedPrecondition(KizunaError):
    code = "FAILED_PRECONDITION"


class ResourceExhausted(KizunaError):
    code = "RESOURCE_EXHAUSTED"


class Unavailable(KizunaError):
    code = "UNAVAILABLE"


class DeadlineExceeded(KizunaError):
    code = "DEADLINE_EXCEEDED"


class Cancelled(KizunaError):
    code = "CANCELLED"


class Internal(KizunaError):
    code = "INTERNAL"


class Unknown(KizunaError):
    code = "UNKNOWN"


class DataLoss(KizunaError):
    code = "DATA_LOSS"


class RemoteError(KizunaError):
    """A status another service answered with and this vocabulary has no class for."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# The calls that may go better when tried again: the callee did not answer, or asked
# for time. Everything else is the callee's answer and stays the same on a retry.
TRANSIENT = (Unavailable, DeadlineExceeded, ResourceExhausted)
# The callee did not answer at all (as opposed to answering with a refusal).
UNREACHABLE = (Unavailable, DeadlineExceeded, Cancelled, Unknown)

_BY_CODE = {cls.code: cls for cls in (
    InvalidArgument, NotFound, AlreadyExists, PermissionDenied, Unauthenticated, FailedPrecondition,
    ResourceExhausted, Unavailable, DeadlineExceeded, Cancelled, Internal, Unknown, DataLoss)}


def parse(message_type, data: bytes, what: str):
    """`data` as a `message_type` (a protobuf message class), or InvalidArgument naming `what`."""
    try:
        return message_type.FromString(data)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError, bad UTF-8 in a string field
        raise InvalidArgument(f"the {what} does not parse") from None


def error_for(code: str, message: str) -> KizunaError:
    """The error of the class that carries `code` (a RemoteError for a code without one)."""
    cls = _BY_CODE.get(code)
    return cls(message) if cls is not None else RemoteError(code, message)
