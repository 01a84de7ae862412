"""Errors under /api/ answer JSON from the project's own URLconf; every other path keeps Django's pages."""

import pytest
from django.test import Client

from payouts import selectors

pytestmark = pytest.mark.django_db


def test_an_api_path_that_matches_no_route_answers_json_404(client, superuser):
    client.force_login(superuser)

    response = client.get("/api/payouts/abc/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "not_found", "detail": "No API endpoint at /api/payouts/abc/."}


def test_a_page_outside_the_api_keeps_the_html_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "text/html" in response["Content-Type"]


def test_an_unhandled_error_in_the_api_answers_json_500_without_the_traceback(superuser, monkeypatch, settings):
    settings.DEBUG = False

    def broken(**_kwargs):
        raise RuntimeError("secret detail that must not reach the client")

    monkeypatch.setattr(selectors, "payout_list", broken)
    client = Client(raise_request_exception=False)
    client.force_login(superuser)

    response = client.get("/api/payouts/")

    assert response.status_code == 500
    assert response.json() == {"error": "server_error", "detail": "Internal server error."}
    assert b"secret detail" not in response.content
