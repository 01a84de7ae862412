"""The provider registry: a SyncJob's `provider` names one of these."""

from collections.abc import Callable

from pos_sync.errors import PosSyncErrorCode
from pos_sync.providers.base import PosProvider, ProviderError
from pos_sync.providers.square import SquareProvider

PROVIDERS: dict[str, Callable[[], PosProvider]] = {
    SquareProvider.name: SquareProvider,
}


def get_provider(name: str) -> PosProvider:
    """The provider called `name`; an unknown name is bad input, never retried."""
    factory = PROVIDERS.get(name)
    if factory is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ProviderError(
            PosSyncErrorCode.UNKNOWN_PROVIDER,
            f"Unknown POS provider {name!r} (known: {known}). Nothing was sent.",
            retryable=False,
        )
    return factory()
