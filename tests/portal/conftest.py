# The portal shows tiers: the same default tiers as the affiliates tests.
from tests.affiliates.conftest import default_tiers  # noqa: F401
