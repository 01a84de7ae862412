"""The project's URLs with JSON error pages under /api/ (audit.apis.api_not_found, api_server_error).

A stop-gap for the fuzz test until config/urls.py declares both handlers (requested in the issue 9
report): every route is the project's own, only the handlers are added.
"""

from config.urls import urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]
handler404 = "audit.apis.api_not_found"
handler500 = "audit.apis.api_server_error"
