"""Local stand-ins for Wise, Square and Stripe: the demo and the tests talk to these through the
real clients, pointed at them by WISE_API_URL, SQUARE_BASE_URL and STRIPE_API_BASE."""
