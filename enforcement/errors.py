"""Errors the services raise; every entry point turns them into its own kind of message."""


BLANK = "This field may not be blank."


class ServiceError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code is not None:
            self.code = code  # a more precise word than the class's, e.g. "person_required"


class ValidationFailed(ServiceError):
    code = "validation_error"
    http_status = 400


class Forbidden(ServiceError):
    code = "forbidden"
    http_status = 403


class NotFound(ServiceError):
    code = "not_found"
    http_status = 404


class InvalidTransition(ServiceError):
    code = "invalid_transition"
    http_status = 409


class Conflict(ServiceError):
    code = "conflict"
    http_status = 409
