"""The admin site: Django's admin behind django-otp's second factor.

Everyone who can sign in to the admin (staff and super-admins: the people who review and approve
payouts) gives a TOTP code from an authenticator app after the password, whenever
settings.ADMIN_REQUIRE_OTP is on (always with DEBUG off). django-otp's OTPAdminSite does the work:
its login form verifies the code against the user's device and records the device in the session,
and `has_permission` refuses a session without one, so every admin page and every admin_view-wrapped
view (the ledger statement, the payout buttons) redirects an unverified session to the login page.
Registrations stay on `django.contrib.admin.site` (this is its default site, config.apps).
"""

from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from config.selectors import attention_summary
from core.money import format_totals
from core.permissions import is_super_admin

# The admin sections that libraries bring, named for the people who use them.
THIRD_PARTY_SECTION_NAMES = {
    "auth": "People and permissions",
    "authtoken": "API access tokens",
    "axes": "Sign-in attempts and lockouts",
    "otp_totp": "Second-factor devices (TOTP)",
    "django_celery_beat": "Scheduled jobs (technical)",
}


class AdminLoginForm(OTPAdminAuthenticationForm):
    """django-otp's admin login form, in one step for the usual case of one authenticator.

    django-otp 1.7 verifies a code only against a device the user chose, so that a code is never tried
    on every device in turn (each miss would count as a failed attempt against an unrelated device);
    its form asks for the choice after a first submit. With exactly one confirmed device there is
    nothing to choose and nothing else to count against: that device is the one."""

    def clean_otp(self, user: Any) -> None:
        if user is not None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user))
            if len(devices) == 1:
                self.cleaned_data["otp_device"] = devices[0].persistent_id
        super().clean_otp(user)


class BackOfficeAdminSite(OTPAdminSite):
    """OTPAdminSite under the usual name "admin" (so reverse("admin:...") is unchanged), with the
    second factor switched by settings.ADMIN_REQUIRE_OTP, read when the site is built at start-up."""

    login_form: type[AuthenticationForm] | None = AdminLoginForm
    site_header = "Back office"
    site_title = "Back office"
    index_title = "What needs attention, and every record"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self.require_otp: bool = settings.ADMIN_REQUIRE_OTP
        if not self.require_otp:
            self.login_form = AdminAuthenticationForm
            self.login_template = None  # Django's own admin/login.html

    def has_permission(self, request: HttpRequest) -> bool:
        if self.require_otp:
            return bool(super().has_permission(request))
        return AdminSite.has_permission(self, request)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        """Libraries' sections under names for finance staff, not their package names."""
        app_list = super().get_app_list(request, app_label)
        for app in app_list:
            app["name"] = THIRD_PARTY_SECTION_NAMES.get(app["app_label"], app["name"])
        return app_list

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        """The index, with one summary of what needs attention for super-admins (who act on it):
        templates/admin/index.html draws it from config.selectors.attention_summary."""
        context = dict(extra_context or {})
        if is_super_admin(request.user):
            summary = attention_summary()
            context["attention"] = summary
            context["pending_review_amounts"] = format_totals(summary.pending_review.totals)
        return super().index(request, extra_context=context)
