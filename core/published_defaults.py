"""The credentials this repository publishes: the demo's sandbox values, by environment variable.

Anyone can read them here, so anyone can sign a Stripe webhook or forge a session with them. The
settings use them as the demo's defaults (DJANGO_DEBUG on) and refuse to start with one anywhere
else; the Stripe webhook ingress refuses a delivery verified with one outside the demo, in case a
settings module switched DEBUG off after the start-up check. One list, so that a sandbox default
added here is refused everywhere at once.
"""

from typing import Final

PUBLISHED_DEFAULTS: Final[dict[str, str]] = {
    "DJANGO_SECRET_KEY": "dev-only-insecure-secret-key-change-me",
    "STRIPE_SECRET_KEY": "sk_test_sandbox",
    "STRIPE_WEBHOOK_SECRET": "whsec_sandbox",
    "WISE_API_TOKEN": "wise-sandbox-token",
    "SQUARE_ACCESS_TOKEN": "square-sandbox-token",
}


def is_published(value: str) -> bool:
    """True for any of the published values, whichever variable it was given for."""
    return value in PUBLISHED_DEFAULTS.values()
