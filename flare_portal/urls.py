from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import health

api_patterns = [
    path("", include("tenants.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/", include(api_patterns)),
    path("admin/", admin.site.urls),
]

handler400 = "flare_portal.api.errors.handler400"
handler403 = "flare_portal.api.errors.handler403"
handler404 = "flare_portal.api.errors.handler404"
handler500 = "flare_portal.api.errors.handler500"
