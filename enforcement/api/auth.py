"""Who is calling the API: a service token (``Authorization: Bearer <token>``) or a staff session.

``actor_of(request)`` turns either into the ``Actor`` the services take, so a view never
has to know which kind of caller it serves.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from enforcement.actors import Actor
from enforcement.api.throttling import throttle_unauthenticated
from enforcement.models import ServiceToken
from enforcement.tokens import service_token_authenticate


class TokenPrincipal:
    """``request.user`` for a service token: authenticated, never staff, holds no Django permissions."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None

    def __init__(self, token: ServiceToken):
        self.token = token
        self.username = f"token:{token.name}"

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def __str__(self) -> str:
        return self.username


class ServiceTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>``. A missing header lets the next authenticator try;
    a malformed, unknown, revoked or expired token is a 401."""

    keyword = "Bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        token = service_token_authenticate(raw)
        if token is None:
            throttle_unauthenticated(request)  # guessing tokens costs the address its anonymous budget
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired token.")
        return TokenPrincipal(token), token

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return f'{self.keyword} realm="api"'


def actor_of(request) -> Actor:
    """The services' ``Actor`` for an authenticated API request (cached on the request)."""
    actor = getattr(request, "_enforcement_actor", None)
    if actor is None:
        if isinstance(request.auth, ServiceToken):
            actor = Actor.for_token(request.auth)
        else:
            actor = Actor.for_user(request.user)
        request._enforcement_actor = actor
    return actor


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = ServiceTokenAuthentication
    name = "ServiceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A service token from `manage.py create_service_token NAME --scopes ...`.",
        }
