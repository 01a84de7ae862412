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
    """Parses the dashboard's payout form, nothing more: the payouts service applies the rules
    (positive, the currency's decimals, the largest payout, the balance, the currency) and the
    portal words its refusals (portal.refusals), so one rule never has two messages."""

    amount = forms.DecimalField(
        error_messages={
            "required": "Enter the amount you want to be paid.",
            "invalid": "Enter the amount as a number, for example 250.00.",
        }
    )
    # Blank: the program currency. Not a ChoiceField: a currency the affiliate cannot be paid in is
    # the service's refusal to word (which currencies it can use instead), not "invalid choice".
    currency = forms.CharField(max_length=10, required=False, strip=True)

    def clean_currency(self) -> str:
        return str(self.cleaned_data["currency"]).upper()
