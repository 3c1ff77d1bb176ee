from flare_portal.api.routing import api_path

from .views import ResourceListView

app_name = "providers"

urlpatterns = [*api_path("resources", ResourceListView.as_view(), "resource-list")]
