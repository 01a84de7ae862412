from django.contrib import admin

from core.admin_base import ReadOnlyAdmin
from core.models import Claim


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = ["key", "claimed_at", "lease_expires_at", "completed_at"]
    search_fields = ["key"]
    list_filter = [("completed_at", admin.EmptyFieldListFilter)]
