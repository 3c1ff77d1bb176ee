"""GET /resources and the provider administrators' console, as a user would try them."""

from __future__ import annotations

import pytest

from providers import ledger
from providers.models import GpuNode, Provider
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

H100_ANNOTATIONS = """gpu.fluidos.eu/vendor=nvidia
gpu.fluidos.eu/model=nvidia-h100
gpu.fluidos.eu/count=8
gpu.fluidos.eu/memory-per-gpu=80Gi
cost.fluidos.eu/hourly-rate=2.10
location.fluidos.eu/region=eu-west-1
location.fluidos.eu/zone=eu-west-1a
"""

A6000_LABELS = """nvidia.com/gpu.product=NVIDIA-RTX-A6000
nvidia.com/gpu.memory=49140
nvidia.com/gpu.count=2
nvidia.com/gpu.family=ampere
nvidia.com/gpu.compute.major=8
nvidia.com/gpu.compute.minor=6
"""


def test_resources_lists_free_and_total_per_offer(client_a, make_node):
    node = make_node(provider_name="Neo", model="nvidia-h100", count=8, rate="2.50")
    make_node(provider_name="Neo", model="nvidia-h100", count=8, rate="2.50")
    ledger.reserve("t_globex", "intent-x", [ledger.Hold(node.pk, 3, node.hourly_rate)])
    body = client_a.get("/api/v1/resources").json()
    entry = next(e for e in body["available_gpus"] if e["model"] == "nvidia-h100")
    assert entry["count"] == 13 and entry["total"] == 16 and entry["nodes"] == 2
    assert entry["memory"] == "80Gi" and entry["cost_per_hour"] == "2.50 EUR"
    assert entry["location"] == "eu-west-1" and entry["provider"] == "Neo"
    assert {"tier", "architecture", "interconnect", "interruptible"} <= set(entry)


def test_resources_filters(client_a, make_node):
    make_node(provider_name="EuCloud", model="nvidia-h100", count=4, rate="3.00", region="eu-west-1")
    make_node(provider_name="UsCloud", model="nvidia-a100", count=4, rate="1.50", region="us-east-1")
    make_node(provider_name="UsCloud", model="nvidia-t4", count=1, rate="0.30", region="us-east-1")

    def models(query):
        return sorted(e["model"] for e in client_a.get("/api/v1/resources" + query).json()["available_gpus"])

    assert models("?model=nvidia-h100") == ["nvidia-h100"]
    assert models("?model=H100") == ["nvidia-h100"]           # catalogue aliases
    assert models("?location=US") == ["nvidia-a100", "nvidia-t4"]
    assert models("?location=EU") == ["nvidia-h100"]
    assert models("?min_memory=40Gi") == ["nvidia-a100", "nvidia-h100"]
    assert models("?provider=uscloud") == ["nvidia-a100", "nvidia-t4"]
    assert models("?max_price=1.00") == ["nvidia-t4"]
    response = client_a.get("/api/v1/resources?min_memory=lots")
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_FORMAT"


def test_resources_exclude_unavailable_nodes_and_inactive_providers(client_a, make_node):
    hidden = make_node(provider_name="Gone", model="nvidia-v100", count=4, available=False)
    make_node(provider_name="Off", model="nvidia-l4", count=1)
    Provider.objects.filter(name="Off").update(active=False)
    models = {e["model"] for e in client_a.get("/api/v1/resources").json()["available_gpus"]}
    assert "nvidia-v100" not in models and "nvidia-l4" not in models
    assert hidden.pk


def test_resources_pagination_and_bounded_queries(client_a, demo_federation, django_assert_max_num_queries):
    # Constant, whatever the number of nodes: auth (2), schema switches, nodes, ledger aggregate.
    with django_assert_max_num_queries(8):
        first = client_a.get("/api/v1/resources?limit=5").json()
    assert len(first["available_gpus"]) == 5 and first["count"] > 5 and first["next"]
    second = client_a.get(first["next"]).json()
    everything = client_a.get("/api/v1/resources?limit=500").json()["available_gpus"]
    assert first["available_gpus"] + second["available_gpus"] == everything[:10]
    prices = [e["cost_per_hour_value"] for e in first["available_gpus"]]
    assert prices == sorted(prices)


def test_resources_needs_resources_read(api, issue, user_a, tenant_a):
    _, secret = issue(user_a, tenant_a, ["intents:read"])
    response = api(secret).get("/api/v1/resources")
    assert response.status_code == 403 and response.json()["error_code"] == "INSUFFICIENT_PERMISSIONS"


# --- the admin console -------------------------------------------------------------------------


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def provider(db):
    return Provider.objects.create(name="Fjord", fluidos_domain="fjord.fluidos.example", region="eu-north-1",
                                   location_group="EU")


def node_form(provider, **fields):
    data = {"provider": provider.pk, "name": "gpu-node-1", "available": "on", "cpu": "64", "memory": "512Gi",
            "pods": "110", "annotations_text": "", "labels_text": ""}
    data.update(fields)
    return data


def test_admin_adds_a_node_from_annotations_and_it_appears_in_resources(admin_client, provider, client_a):
    response = admin_client.post("/admin/providers/gpunode/add/", node_form(provider, annotations_text=H100_ANNOTATIONS))
    assert response.status_code == 302, response.content.decode()[:2000]
    node = GpuNode.objects.get(name="gpu-node-1")
    assert node.model == "nvidia-h100" and node.count == 8 and node.memory_per_gpu == 80 * 2**30
    assert node.tier == "premium"  # filled from the catalogue
    page = admin_client.get(f"/admin/providers/gpunode/{node.pk}/change/").content.decode()
    assert "kubectl annotate" in page and "gpu.fluidos.eu/model=nvidia-h100" in page
    assert AuditEntry.objects.filter(action="node.create").exists()
    models = {e["model"] for e in client_a.get("/api/v1/resources").json()["available_gpus"]}
    assert "nvidia-h100" in models


def test_admin_shows_precise_annotation_errors_and_saves_nothing(admin_client, provider):
    bad = H100_ANNOTATIONS.replace("memory-per-gpu=80Gi", "memory-per-gpu=80GB").replace("count=8", "count=eight")
    response = admin_client.post("/admin/providers/gpunode/add/", node_form(provider, annotations_text=bad))
    assert response.status_code == 200
    page = response.content.decode()
    assert "gpu.fluidos.eu/memory-per-gpu" in page and "80GB" in page
    assert "gpu.fluidos.eu/count" in page
    assert not GpuNode.objects.exists()


def test_admin_node_from_gpu_operator_labels(admin_client, provider):
    response = admin_client.post("/admin/providers/gpunode/add/", node_form(
        provider, labels_text=A6000_LABELS, annotations_text="cost.fluidos.eu/hourly-rate=0.70"))
    assert response.status_code == 302, response.content.decode()[:2000]
    node = GpuNode.objects.get(name="gpu-node-1")
    assert node.model == "nvidia-rtx-a6000" and node.count == 2 and node.memory_per_gpu == 48 * 2**30
    assert node.compute_capability == "8.6"


def test_admin_import_labels_view_previews_then_saves(admin_client, provider):
    url = "/admin/providers/gpunode/import-labels/"
    assert admin_client.get(url).status_code == 200
    form = {"provider": provider.pk, "node_name": "a6000-box", "labels_text": A6000_LABELS, "cpu": "32",
            "memory": "256Gi", "pods": "110"}
    preview = admin_client.post(url, {**form, "preview": "1"}).content.decode()
    assert "nvidia-rtx-a6000" in preview and not GpuNode.objects.exists()
    saved = admin_client.post(url, {**form, "save": "1"})
    assert saved.status_code == 302
    assert GpuNode.objects.get(name="a6000-box").count == 2


def test_admin_list_filters_columns_and_actions(admin_client, make_node):
    node = make_node(provider_name="Neo", model="nvidia-l40s", count=4)
    ledger.reserve("t_acme", "intent-y", [ledger.Hold(node.pk, 1, node.hourly_rate)])
    page = admin_client.get("/admin/providers/gpunode/?model=nvidia-l40s").content.decode()
    assert "nvidia-l40s" in page and "Import from GPU-operator labels" in page
    response = admin_client.post("/admin/providers/gpunode/", {"action": "mark_unavailable",
                                                                "_selected_action": [node.pk]})
    assert response.status_code == 302
    node.refresh_from_db()
    assert node.available is False
    assert AuditEntry.objects.filter(action="node.unavailable").exists()
    kubectl = admin_client.post("/admin/providers/gpunode/", {"action": "show_kubectl_annotate",
                                                               "_selected_action": [node.pk]})
    assert kubectl.status_code == 200 and "kubectl annotate" in kubectl.content.decode()
    providers_page = admin_client.get("/admin/providers/provider/").content.decode()
    assert "GPUs free" in providers_page


def test_tenant_users_cannot_use_the_admin(client, user_a):
    client.force_login(user_a)
    response = client.get("/admin/providers/gpunode/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_seed_federation_is_idempotent(db):
    from django.core.management import call_command

    import io

    call_command("seed_federation", "--no-progress", stdout=io.StringIO())
    first = GpuNode.objects.count()
    out = io.StringIO()
    call_command("seed_federation", "--no-progress", stdout=out)
    assert GpuNode.objects.count() == first >= 60
    assert Provider.objects.count() >= 6
    assert f"0 nodes created, 0 updated, {first} unchanged" in out.getvalue()
    # A changed price is picked up on the next run.
    node = GpuNode.objects.order_by("pk").first()
    node.annotations = {**node.annotations, "cost.fluidos.eu/hourly-rate": "99.0"}
    node.save(update_fields=["annotations"])
    out = io.StringIO()
    call_command("seed_federation", "--no-progress", stdout=out)
    assert "1 updated" in out.getvalue()
    node.refresh_from_db()
    assert node.annotations["cost.fluidos.eu/hourly-rate"] != "99.0"
