from django.contrib import admin

from core.admin_base import ReadOnlyAdmin
from webhooks.models import WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "provider", "event_type", "event_id"]
    list_filter = ["provider", "event_type"]
    search_fields = ["event_id"]
