"""A connection's credentials, checked before anything is sent to its POS."""

from pos_sync.errors import PosSyncErrorCode
from pos_sync.models import PosConnection
from pos_sync.providers.base import Credentials, ProviderError


def connection_credentials(connection: PosConnection) -> Credentials:
    """The connection's own token and location: a restaurant's orders only ever go to its own POS
    account, so there is no fallback to a platform-wide token. Missing ones are bad input."""
    problem = ""
    if not connection.is_active:
        problem = "is inactive"
    elif not connection.access_token:
        problem = "has no access token"
    elif not connection.location_id:
        problem = "has no location id"
    if problem:
        raise ProviderError(
            PosSyncErrorCode.MISSING_CREDENTIALS,
            f"POS connection #{connection.pk} ({connection.restaurant_name}) {problem}: nothing was sent. "
            "Fix the connection in the admin, then requeue the job.",
            retryable=False,
        )
    return Credentials(
        access_token=connection.access_token, location_id=connection.location_id, connection_id=connection.pk
    )
