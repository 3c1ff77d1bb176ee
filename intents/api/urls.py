from flare_portal.api.routing import api_path

from .views import IntentDetailView, IntentEventsView, IntentListCreateView, IntentSolverView

app_name = "intents"

urlpatterns = [
    *api_path("intents", IntentListCreateView.as_view(), "intent-list"),
    *api_path("intents/<str:intent_id>", IntentDetailView.as_view(), "intent-detail"),
    *api_path("intents/<str:intent_id>/events", IntentEventsView.as_view(), "intent-events"),
    *api_path("intents/<str:intent_id>/solver", IntentSolverView.as_view(), "intent-solver"),
]
