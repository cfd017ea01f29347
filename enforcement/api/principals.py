"""Who is calling, as a stable name: the key of throttling counters and idempotency records."""

from enforcement.models import ServiceToken


def principal_of(request) -> str | None:
    """A stable name for who is calling, for throttling and idempotency keys."""
    if isinstance(request.auth, ServiceToken):
        return f"token:{request.auth.pk}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.pk is not None:
        return f"user:{user.pk}"
    return None
