"""The one error vocabulary: domain exceptions that carry the gRPC status they map to.

Domain code raises these without importing grpc; `services.common.rpc` turns them
into `context.abort(code, message)`.
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


class RemoteError(KizunaError):
    """A call to another service failed; `code` is the status that came back."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
