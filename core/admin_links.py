"""Admin change-page links resolved by name ("payouts.payout", 12), for code that may not import
the model's app: the ledger's transfer references, audit's alert mails."""

from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import NoReverseMatch, reverse


def admin_change_path(label: str, pk: object) -> str | None:
    """The admin change page of `<app_label>.<model>` `pk`, or None when the label names no model
    registered in the admin."""
    app_label, dot, model_name = label.partition(".")
    if not (dot and app_label and model_name and str(pk)):
        return None
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        return None
    if not admin.site.is_registered(model):
        return None
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[quote(str(pk))])
    except NoReverseMatch:
        return None


def absolute_url(path: str) -> str:
    """A path of this site as a link that works outside it (a mail): SITE_URL + path."""
    return f"{settings.SITE_URL.rstrip('/')}{path}"
