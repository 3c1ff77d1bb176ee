"""The portal's pages, mounted at `/` (flare_portal/urls.py). Names: `portal:<page>`."""

from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/usage.json", views.dashboard_usage, name="dashboard-usage"),
    path("intents/new", views.intent_submit, name="intent-submit"),
    path("intents/<str:intent_id>", views.intent_detail, name="intent-detail"),
    path("intents/<str:intent_id>/cancel", views.intent_cancel, name="intent-cancel"),
    path("resources", views.resources, name="resource-list"),
    path("tokens", views.tokens, name="token-list"),
    path("tokens/<str:token_id>/revoke", views.token_revoke, name="token-revoke"),
    path("members", views.members, name="member-list"),
    path("members/<str:username>/remove", views.member_remove, name="member-remove"),
    path("webhooks", views.webhook_list, name="webhook-list"),
    path("webhooks/<int:webhook_id>", views.webhook_detail, name="webhook-detail"),
    path("webhooks/<int:webhook_id>/delete", views.webhook_delete, name="webhook-delete"),
    path("audit", views.audit, name="audit-list"),
]
