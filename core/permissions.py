"""Who counts as a super-admin, and the DRF permissions that ask a domain's authority rule.

Staff-only endpoints (pos_sync) use DRF's IsAdminUser on purpose: there, staff is the authority.
Endpoints that move money name their domain's one authority function (e.g.
payouts.authority.ensure_may_review) and use `ActorAuthority`, so the API refuses exactly whom the
services, the admin pages and the bulk actions refuse, with the same message.
"""

from collections.abc import Callable
from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def is_super_admin(user: Any) -> bool:
    """Active and a superuser: the one definition (a staff flag or a model permission is not enough)."""
    return bool(getattr(user, "is_active", False) and getattr(user, "is_superuser", False))


class IsSuperAdmin(BasePermission):
    """Signed in and a superuser. The 403's detail is the view's `super_admin_message` when it sets
    one (it tells the caller what was refused, e.g. "Only super-admins may review payouts."), else
    DRF's generic message."""

    message = exceptions.PermissionDenied.default_detail

    def has_permission(self, request: Request, view: Any) -> bool:
        allowed = bool(request.user and request.user.is_authenticated and is_super_admin(request.user))
        if not allowed:
            # DRF reads the refusal's detail from the permission instance, made anew per request.
            self.message = getattr(view, "super_admin_message", self.message)
        return allowed


class ActorAuthority(BasePermission):
    """Signed in, and allowed by the view's `authority`: a callable taking `actor=<the user>` that
    raises core.errors.PermissionDenied (the domain's one rule of who may act). Its refusal is the
    403 body as the error handler renders it, code and message included; an anonymous caller still
    gets DRF's 401."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        authority: Callable[..., None] = view.authority
        authority(actor=request.user)
        return True
