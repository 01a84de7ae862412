"""A Wise stand-in for every payouts test: the real client talks to it over HTTP, and tests assert
on its own record (transfers, fundings, requests) for what really happened at "Wise"."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.core import RunningStandIn
from sandbox.wise import WiseStandIn


@pytest.fixture(scope="session")
def wise_private_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="session")
def wise_server(wise_private_key_pem):
    running = RunningStandIn(WiseStandIn(private_key_pem=wise_private_key_pem, webhook_url="", auto_complete_seconds=0))
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def wise(wise_server, settings) -> WiseStandIn:
    """The stand-in, reset, with the settings pointing at it (function scope: settings are restored)."""
    wise_server.app.reset()
    settings.WISE_API_URL = wise_server.url
    settings.WISE_API_TOKEN = wise_server.app.token
    settings.WISE_PROFILE_ID = wise_server.app.profile_id
    settings.WISE_WEBHOOK_PUBLIC_KEY = wise_server.app.public_key_pem
    settings.WISE_TIMEOUT_SECONDS = 5.0
    return wise_server.app
