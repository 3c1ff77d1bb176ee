import copy

import pytest

from flare_portal import crds
from flare_portal.crds import assert_valid_custom_resource, load_crds, validate_custom_resource

SOLVER = {
    "apiVersion": "nodecore.fluidos.eu/v1alpha1",
    "kind": "Solver",
    "metadata": {"name": "flare-7f3a9c-1", "namespace": "fluidos",
                 "labels": {"flare.io/intent-id": "7f3a9c", "flare.io/tenant": "acme"}},
    "spec": {
        "intentID": "7f3a9c",
        "findCandidate": True,
        "reserveAndBuy": False,
        "establishPeering": False,
        "selector": {
            "flavorType": "K8Slice",
            "filters": {
                "cpuFilter": {"name": "Range", "data": {"min": "4"}},
                "gpuFilters": [{"field": "model", "filter": "StringFilter", "data": {"value": "nvidia-h100"}}],
            },
        },
    },
}

ALLOCATION = {
    "apiVersion": "nodecore.fluidos.eu/v1alpha1",
    "kind": "Allocation",
    "metadata": {"name": "allocation-nebula.fluidos.eu-k8slice-1a2b-9f0e", "namespace": "fluidos"},
    "spec": {"contract": {"name": "contract-nebula-fluidos-eu-k8slice-1a2b-9f0e", "namespace": "fluidos"},
             "forwarding": False},
}

OFFLOADING = {
    "apiVersion": "offloading.liqo.io/v1beta1",
    "kind": "NamespaceOffloading",
    "metadata": {"name": "offloading", "namespace": "flare-acme-train"},
    "spec": {
        "namespaceMappingStrategy": "DefaultName",
        "podOffloadingStrategy": "Remote",
        "clusterSelector": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "liqo.io/remote-cluster-id", "operator": "In", "values": ["provider-1"]},
        ]}]},
    },
}

TENANT = {
    "apiVersion": "capsule.clastix.io/v1beta2",
    "kind": "Tenant",
    "metadata": {"name": "flare-acme"},
    "spec": {"owners": [{"kind": "User", "name": "alice"}], "forceTenantPrefix": True},
}


def test_every_vendored_crd_is_loaded():
    loaded = load_crds()
    assert {
        ("nodecore.fluidos.eu/v1alpha1", "Flavor"), ("nodecore.fluidos.eu/v1alpha1", "Solver"),
        ("nodecore.fluidos.eu/v1alpha1", "Allocation"), ("nodecore.fluidos.eu/v1alpha1", "ServiceBlueprint"),
        ("advertisement.fluidos.eu/v1alpha1", "Discovery"), ("advertisement.fluidos.eu/v1alpha1", "PeeringCandidate"),
        ("reservation.fluidos.eu/v1alpha1", "Reservation"), ("reservation.fluidos.eu/v1alpha1", "Contract"),
        ("reservation.fluidos.eu/v1alpha1", "Transaction"), ("network.fluidos.eu/v1alpha1", "KnownCluster"),
        ("network.fluidos.eu/v1alpha1", "Broker"), ("offloading.liqo.io/v1beta1", "NamespaceOffloading"),
        ("capsule.clastix.io/v1beta1", "Tenant"), ("capsule.clastix.io/v1beta2", "Tenant"),
    } <= set(loaded)
    assert loaded[("capsule.clastix.io/v1beta2", "Tenant")].namespaced is False
    assert loaded[("nodecore.fluidos.eu/v1alpha1", "Flavor")].source == "nodecore.fluidos.eu_flavors.yaml"


def test_schemas_are_loaded_once():
    assert load_crds() is load_crds()
    assert crds._validator("nodecore.fluidos.eu/v1alpha1", "Solver") is crds._validator(
        "nodecore.fluidos.eu/v1alpha1", "Solver")


@pytest.mark.parametrize("manifest", [SOLVER, ALLOCATION, OFFLOADING, TENANT], ids=lambda m: m["kind"])
def test_valid_manifests(manifest):
    assert validate_custom_resource(manifest) == []
    assert_valid_custom_resource(manifest)


def test_preserve_unknown_fields_accepts_anything_there():
    # Solver filters are x-kubernetes-preserve-unknown-fields: FLARE's gpuFilters fit without a schema change.
    solver = copy.deepcopy(SOLVER)
    solver["spec"]["selector"]["filters"]["gpuFilters"].append({"field": "flare_discovery", "anything": [1, 2]})
    assert validate_custom_resource(solver) == []


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda m: m["spec"].pop("intentID"), "spec: 'intentID' is required"),
        (lambda m: m["spec"].update(findCandidate="true"), "spec.findCandidate: 'true' is not of type 'boolean'"),
        (lambda m: m["spec"].update(reserveAndBuy=None), "spec.reserveAndBuy: None is not of type 'boolean'"),
        (lambda m: m["spec"].update(findCandidates=True),
         "spec: unknown field(s) findCandidates; the API server drops them"),
        (lambda m: m["spec"]["selector"].pop("flavorType"), "spec.selector: 'flavorType' is required"),
        (lambda m: m["metadata"].update(name="Flare_Intent"),
         "metadata.name: 'Flare_Intent' is not a DNS-1123 subdomain"),
        (lambda m: m["metadata"].pop("name"), "metadata.name: required (or metadata.generateName)"),
        (lambda m: m["metadata"].update(namespace="Fluidos"), "metadata.namespace: 'Fluidos' is not a DNS-1123 label"),
        (lambda m: m.update(status={"solverPhase": {"message": "x"}}), "status.solverPhase: 'phase' is required"),
    ],
)
def test_a_broken_solver_is_rejected(mutate, error):
    manifest = copy.deepcopy(SOLVER)
    mutate(manifest)
    errors = validate_custom_resource(manifest)
    assert any(text.startswith(error) for text in errors), errors


def test_enumerations_and_nested_lists_are_checked():
    offloading = copy.deepcopy(OFFLOADING)
    offloading["spec"]["podOffloadingStrategy"] = "Everywhere"
    offloading["spec"]["clusterSelector"]["nodeSelectorTerms"][0]["matchExpressions"][0].pop("operator")
    errors = validate_custom_resource(offloading)
    assert any(e.startswith("spec.podOffloadingStrategy: 'Everywhere' is not one of") for e in errors), errors
    assert "spec.clusterSelector.nodeSelectorTerms[0].matchExpressions[0]: 'operator' is required" in errors


def test_a_cluster_scoped_kind_takes_no_namespace():
    tenant = copy.deepcopy(TENANT)
    tenant["metadata"]["namespace"] = "default"
    tenant["spec"]["owners"][0]["kind"] = "Robot"
    errors = validate_custom_resource(tenant)
    assert "metadata.namespace: Tenant is cluster-scoped and takes no namespace" in errors
    assert any(e.startswith("spec.owners[0].kind: 'Robot' is not one of") for e in errors), errors


def test_unknown_kinds_and_versions():
    wrong_version = {**ALLOCATION, "apiVersion": "nodecore.fluidos.eu/v1beta1"}
    assert validate_custom_resource(wrong_version)[0].startswith(
        "(root): no CRD in deploy/crds serves Allocation in nodecore.fluidos.eu/v1beta1; known: ")
    assert validate_custom_resource({"kind": "Solver"}) == ["(root): apiVersion and kind are required"]
    assert validate_custom_resource(["not", "an", "object"]) == ["(root): expected an object, got list"]


def test_assert_valid_custom_resource_lists_every_error():
    manifest = copy.deepcopy(ALLOCATION)
    manifest["spec"]["forwarding"] = "no"
    manifest["spec"]["contract"]["name"] = 7
    with pytest.raises(AssertionError) as raised:
        assert_valid_custom_resource(manifest)
    text = str(raised.value)
    assert text.startswith("Allocation 'allocation-nebula.fluidos.eu-k8slice-1a2b-9f0e' does not match its CRD:")
    assert "spec.forwarding: 'no' is not of type 'boolean'" in text
    assert "spec.contract.name: 7 is not of type 'string'" in text
