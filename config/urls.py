from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("webhooks.urls")),
    path("", include("payouts.urls")),
    path("", include("portal.urls")),
    path("", include("pos_sync.urls")),
    path("", include("loyalty.urls")),
]

# Errors under /api/ answer JSON like every other API error; other paths keep Django's pages.
handler404 = "core.api_errors.api_not_found"
handler500 = "core.api_errors.api_server_error"
