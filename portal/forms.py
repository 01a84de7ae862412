from decimal import Decimal

from django import forms


class PayoutRequestForm(forms.Form):
    """Parses the dashboard's payout form; the payouts service applies the rules (balance, currency)."""

    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=2)
