"""The one DRF permission for super-admin endpoints.

Staff-only endpoints (pos_sync) use DRF's IsAdminUser on purpose: there, staff is the authority.
"""

from typing import Any

from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class IsSuperAdmin(BasePermission):
    """Signed in and a superuser. The 403's detail is the view's `super_admin_message` when it sets
    one (it tells the caller what was refused, e.g. "Only super-admins may review payouts."), else
    DRF's generic message."""

    message = exceptions.PermissionDenied.default_detail

    def has_permission(self, request: Request, view: Any) -> bool:
        allowed = bool(request.user and request.user.is_authenticated and request.user.is_superuser)
        if not allowed:
            # DRF reads the refusal's detail from the permission instance, made anew per request.
            self.message = getattr(view, "super_admin_message", self.message)
        return allowed
