"""Who performed a change: a user, or a named system job (a webhook, a beat task, a command)."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias, Union

from django.contrib.auth.base_user import AbstractBaseUser

from core.errors import PermissionDenied

if TYPE_CHECKING:
    # The project's user model (AUTH_USER_MODEL is not swapped). Imported for the type checker only:
    # core.actors is imported while models load, before django.contrib.auth.models may be.
    from django.contrib.auth.models import AnonymousUser, User
    from django.http import HttpRequest
    from rest_framework.request import Request


@dataclass(frozen=True)
class SystemActor:
    name: str  # e.g. "webhook:wise", "task:push_pending_orders"

    @property
    def label(self) -> str:
        return f"system:{self.name}"


# Union, not `|`: the user model is only a forward reference here, and annotations such as
# `Actor | None` are evaluated at import time.
Actor: TypeAlias = Union["User", SystemActor]


def actor_label(actor: Actor) -> str:
    if isinstance(actor, SystemActor):
        return actor.label
    return actor.get_username()


def actor_user(actor: Actor) -> "User | None":
    return None if isinstance(actor, SystemActor) else actor


def signed_in_user(request: "HttpRequest | Request") -> "User":
    """`request.user` where only signed-in users get in (DRF's IsAuthenticated, IsAdminUser or
    IsSuperAdmin, login_required, the admin site): the user model, never AnonymousUser. The check
    only narrows the type; those guards have already refused anonymous callers."""
    user: User | AnonymousUser = request.user
    if not isinstance(user, AbstractBaseUser):
        raise PermissionDenied("Sign in first.")
    return user
