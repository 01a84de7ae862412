"""/api/docs/ with the network cut off: Swagger UI must come from the site's own static files
(drf-spectacular-sidecar), not from a CDN, and draw the operations of our schema.

Every request the page makes to any other origin is aborted and remembered; the test fails if Swagger
UI does not draw, and names what it tried to fetch from elsewhere.
"""

import time
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import record

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_api_docs_render_with_only_the_site_reachable(new_context, live_server):
    started = time.monotonic()
    site = urlsplit(live_server.url).netloc
    blocked: list[str] = []
    served: list[str] = []

    def only_the_site(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == site:
            served.append(urlsplit(url).path)
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    context = new_context()
    context.route("**/*", only_the_site)
    page = context.new_page()
    response = page.goto("/api/docs/")
    assert response is not None and response.status == 200

    # Swagger UI fetched the schema and drew one block per operation, with our paths in them
    try:
        page.wait_for_selector(".opblock", state="visible")
    except PlaywrightTimeoutError as nothing_drawn:
        raise AssertionError(f"Swagger UI drew no operation; asked other origins for {blocked}") from nothing_drawn
    operations = page.locator(".opblock").count()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert operations >= 5, operations
    assert any(path.startswith("/api/payouts") for path in paths), paths
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("Back office API")

    # ... from our own static files: the bundle, its styles and the schema, nothing from a CDN
    assert blocked == [], blocked
    assert any(path.endswith("swagger-ui-bundle.js") and "/static/" in path for path in served), served
    assert any(path.endswith("swagger-ui.css") and "/static/" in path for path in served), served
    assert "/api/schema/" in served, served
    record(
        f"api docs offline: {operations} operations drawn, {len(served)} requests to the site, "
        f"0 elsewhere ({time.monotonic() - started:.1f}s)"
    )
