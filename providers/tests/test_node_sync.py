"""Provider-side node sync (providers.node_sync) against the Kubernetes API emulator: Nodes are
created through the official client, as on a provider cluster."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from kubernetes import client

from providers.federation.kubernetes import ANNOTATION_KEY, KubernetesFederation
from providers.models import GpuNode, Provider
from providers.node_sync import NodeSyncError, push_annotations, sync_nodes
from tenants.services import ServiceError

pytestmark = [pytest.mark.k8s, pytest.mark.django_db]

H100_ANNOTATIONS = {
    "gpu.fluidos.eu/vendor": "nvidia", "gpu.fluidos.eu/model": "nvidia-h100", "gpu.fluidos.eu/count": "4",
    "gpu.fluidos.eu/memory-per-gpu": "80Gi", "location.fluidos.eu/region": "eu-west-1",
    "location.fluidos.eu/zone": "zone-a", "cost.fluidos.eu/hourly-rate": "4.5",
    "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
}
A100_LABELS = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB", "nvidia.com/gpu.count": "8",
               "nvidia.com/gpu.memory": "40960", "nvidia.com/gpu.family": "ampere"}


def node_body(name, *, annotations=None, labels=None, resources=True):
    labels = dict(labels or {}, **{"kubernetes.io/hostname": name})
    if resources:
        labels["node-role.fluidos.eu/resources"] = "true"
    return client.V1Node(
        metadata=client.V1ObjectMeta(name=name, labels=labels, annotations=annotations or {}),
        status=client.V1NodeStatus(allocatable={"cpu": "64", "memory": "512Gi", "pods": "110"},
                                   capacity={"cpu": "64", "memory": "512Gi", "pods": "110"}))


@pytest.fixture
def core(kube_api_client):
    return client.CoreV1Api(kube_api_client)


@pytest.fixture
def provider(db):
    return Provider.objects.create(name="provider-a", fluidos_domain="provider-a.fluidos.eu",
                                   fluidos_node_id="provider-a-node-1", region="eu-west-1")


def test_sync_reads_annotations_and_operator_labels_and_reports_bad_nodes(core, kube_api_client, provider):
    core.create_node(node_body("gpu-1", annotations=H100_ANNOTATIONS))
    core.create_node(node_body("gpu-2", labels=A100_LABELS))
    core.create_node(node_body("gpu-bad", annotations={**H100_ANNOTATIONS, "gpu.fluidos.eu/memory-per-gpu": "40GB"}))
    core.create_node(node_body("cpu-only"))
    core.create_node(node_body("not-advertised", annotations=H100_ANNOTATIONS, resources=False))

    report = sync_nodes(provider, kube_api_client)
    assert sorted(report.created) == ["gpu-1", "gpu-2"] and report.updated == []
    assert report.from_labels == ["gpu-2"]
    assert [e.split(":")[0] for e in report.errors] == ["cpu-only", "node gpu-bad"]
    assert "40GB" in report.errors[1]
    h100 = GpuNode.objects.get(provider=provider, name="gpu-1")
    assert (h100.model, h100.count, h100.memory_per_gpu, h100.region) == ("nvidia-h100", 4, 80 * 2**30, "eu-west-1")
    assert h100.cpu == "64" and h100.memory == "512Gi" and h100.pods == 110
    assert "kubeadm.alpha.kubernetes.io/cri-socket" not in h100.annotations
    assert h100.annotations["flare.io/source"] == "node-sync"
    a100 = GpuNode.objects.get(provider=provider, name="gpu-2")
    assert (a100.model, a100.count, a100.memory_per_gpu) == ("nvidia-a100", 8, 40 * 2**30)
    assert a100.annotations["gpu.fluidos.eu/model"] == "nvidia-a100"

    # Again: updates, and FLARE's bookkeeping survives a re-sync.
    h100.annotations = {**h100.annotations, ANNOTATION_KEY: "provider-a-node-1|nvidia-h100|eu-west-1|zone-a"}
    h100.save()
    again = sync_nodes(provider, kube_api_client)
    assert sorted(again.updated) == ["gpu-1", "gpu-2"] and again.created == []
    assert GpuNode.objects.get(pk=h100.pk).annotations[ANNOTATION_KEY].startswith("provider-a-node-1|")


def test_push_annotations_writes_traits_and_removes_stale_ones(core, kube_api_client, provider):
    core.create_node(node_body("gpu-2", labels=A100_LABELS))
    sync_nodes(provider, kube_api_client)
    node = GpuNode.objects.get(name="gpu-2")
    patch = push_annotations(node, kube_api_client)
    written = core.read_node("gpu-2").metadata.annotations
    assert written["gpu.fluidos.eu/model"] == "nvidia-a100" and written["gpu.fluidos.eu/count"] == "8"
    assert not any(k.startswith("flare.io/") for k in written) and patch
    # The administrator changes the rate and drops the tier: the node follows.
    annotations = {k: v for k, v in node.annotations.items() if k != "gpu.fluidos.eu/tier"}
    annotations["cost.fluidos.eu/hourly-rate"] = "1.75"
    node.annotations = annotations
    node.save()
    patch = push_annotations(node, kube_api_client)
    written = core.read_node("gpu-2").metadata.annotations
    assert written["cost.fluidos.eu/hourly-rate"] == "1.75" and "gpu.fluidos.eu/tier" not in written
    assert patch["gpu.fluidos.eu/tier"] is None
    assert push_annotations(node, kube_api_client) == {}          # nothing left to change


def test_push_to_a_missing_node_and_unreachable_cluster(core, kube_api_client, kube_emulator, provider):
    node = GpuNode.objects.create(provider=provider, name="ghost", annotations=H100_ANNOTATIONS, model="nvidia-h100")
    with pytest.raises(ServiceError):
        push_annotations(node, kube_api_client)
    kube_emulator.inject(verb="list", resource="nodes", status=503, times=None)
    from providers.federation.k8s_client import RetryPolicy

    with pytest.raises(NodeSyncError):
        sync_nodes(provider, kube_api_client, policy=RetryPolicy(retries=2, backoff=0.01, max_backoff=0.02))


def test_transient_errors_while_listing_are_retried(core, kube_api_client, kube_emulator, provider):
    core.create_node(node_body("gpu-1", annotations=H100_ANNOTATIONS))
    fault = kube_emulator.inject(verb="list", resource="nodes", status=500, times=2)
    from providers.federation.k8s_client import RetryPolicy

    report = sync_nodes(provider, kube_api_client, policy=RetryPolicy(retries=3, backoff=0.01, max_backoff=0.02))
    assert report.created == ["gpu-1"] and fault.hits == 2


def test_management_command(core, kube_emulator, provider, capsys):
    core.create_node(node_body("gpu-1", annotations=H100_ANNOTATIONS))
    call_command("sync_provider_nodes", "provider-a.fluidos.eu", "--kubeconfig", kube_emulator.kubeconfig_path())
    assert "1 node(s) created" in capsys.readouterr().out
    with pytest.raises(CommandError):
        call_command("sync_provider_nodes", "nobody", "--kubeconfig", kube_emulator.kubeconfig_path())


def test_a_synced_node_is_the_one_a_discovery_sights(core, kube_api_client, fluidos, provider):
    """The provider's node synced from its cluster and the Flavor its FLUIDOS node advertises are one
    ledger row (same provider domain, model, region, zone)."""
    core.create_node(node_body("gpu-1", annotations=H100_ANNOTATIONS))
    sync_nodes(provider, kube_api_client)
    synced = GpuNode.objects.get(name="gpu-1")
    federation = KubernetesFederation(kube_api_client, backoff=0.01, max_backoff=0.05)
    assert federation.refresh_inventory() == 0       # no PeeringCandidate yet
    assert [o.node_id for o in federation.inventory()] == [str(synced.pk)]
    fluidos.emu.create_object({"apiVersion": "nodecore.fluidos.eu/v1alpha1", "kind": "Solver",
                               "metadata": {"name": "probe", "namespace": "fluidos"},
                               "spec": {"intentID": "probe", "findCandidate": True}})
    fluidos.run_until_idle()
    assert federation.refresh_inventory() == 2
    synced.refresh_from_db()
    assert synced.annotations[ANNOTATION_KEY] == "provider-a-node-1|nvidia-h100|eu-west-1|zone-a"
    assert synced.count == 4
    assert GpuNode.objects.filter(model="nvidia-h100").count() == 1


def test_client_for_provider_reads_the_kubeconfig_secret(core, kube_api_client, kube_emulator, provider):
    import base64

    from providers.node_sync import client_for_provider

    with open(kube_emulator.kubeconfig_path()) as handle:
        kubeconfig = handle.read()
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="flare-system")))
    core.create_namespaced_secret("flare-system", client.V1Secret(
        metadata=client.V1ObjectMeta(name="provider-a-kubeconfig"),
        data={"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()}))
    provider.kubeconfig_secret_ref = "flare-system/provider-a-kubeconfig"
    core.create_node(node_body("gpu-1", annotations=H100_ANNOTATIONS))
    provider_client = client_for_provider(provider, kube_api_client)
    assert sync_nodes(provider, provider_client).created == ["gpu-1"]
    provider.kubeconfig_secret_ref = "flare-system/missing"
    with pytest.raises(ServiceError):
        client_for_provider(provider, kube_api_client)
    provider.kubeconfig_secret_ref = "no-slash"
    with pytest.raises(ServiceError):
        client_for_provider(provider, kube_api_client)


def test_admin_imports_from_the_cluster_and_pushes_annotations_back(core, kube_api_client, provider, client,
                                                                    staff_user, monkeypatch):
    """The console's two cluster actions; only the kubeconfig-Secret lookup is replaced by the emulator."""
    import providers.node_sync as node_sync

    monkeypatch.setattr(node_sync, "client_for_provider", lambda provider, consumer_api_client=None: kube_api_client)
    core.create_node(node_body("gpu-1", annotations=H100_ANNOTATIONS))
    client.force_login(staff_user)
    response = client.post("/admin/providers/provider/", {"action": "import_from_cluster",
                                                          "_selected_action": [provider.pk]}, follow=True)
    assert "1 node(s) created" in response.content.decode()
    node = GpuNode.objects.get(provider=provider, name="gpu-1")
    node.annotations = {**node.annotations, "cost.fluidos.eu/hourly-rate": "3.9"}
    node.save(update_fields=["annotations"])
    response = client.post("/admin/providers/gpunode/", {"action": "push_annotations_to_nodes",
                                                         "_selected_action": [node.pk]}, follow=True)
    assert "annotations pushed" in response.content.decode()
    assert core.read_node("gpu-1").metadata.annotations["cost.fluidos.eu/hourly-rate"] == "3.9"
