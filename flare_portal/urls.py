from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.negotiation import DefaultContentNegotiation

from . import health


class _FormatParamSettings:
    URL_FORMAT_OVERRIDE = "format"


class SchemaNegotiation(DefaultContentNegotiation):
    """`?format=json|yaml` picks the schema's rendering (disabled elsewhere: it is our own parameter)."""

    settings = _FormatParamSettings


class SchemaView(SpectacularAPIView):
    content_negotiation_class = SchemaNegotiation


api_patterns = [
    path("", include("tenants.api.urls")),
    path("", include("intents.api.urls")),
    path("", include("providers.api.urls")),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", include(api_patterns)),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("intents.portal_urls")),
]

handler400 = "flare_portal.api.errors.handler400"
handler403 = "flare_portal.api.errors.handler403"
handler404 = "flare_portal.api.errors.handler404"
handler500 = "flare_portal.api.errors.handler500"
