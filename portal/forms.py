from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm


class AffiliateAuthenticationForm(AuthenticationForm):
    """The affiliates' sign-in, closed to admin users: their session must come from the admin's
    sign-in with its second factor, or a password alone would open the session-authenticated
    super-admin API (payout review) to them."""

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if user.is_staff:
            raise forms.ValidationError("Admin users sign in at /admin/, with their second factor.", code="staff")


class PayoutRequestForm(forms.Form):
    """Parses the dashboard's payout form; the payouts service applies the rules (balance, currency)."""

    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2)
