from flare_portal.api.routing import api_path

from .views import TokenDetailView, TokenListCreateView, VerifyView

app_name = "tenants"

urlpatterns = [
    *api_path("auth/tokens", TokenListCreateView.as_view(), "token-list"),
    *api_path("auth/tokens/<str:token_id>", TokenDetailView.as_view(), "token-detail"),
    *api_path("auth/verify", VerifyView.as_view(), "token-verify"),
]
