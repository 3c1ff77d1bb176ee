"""The emulator, exercised only through the official `kubernetes` client over HTTP."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

NODECORE = ("nodecore.fluidos.eu", "v1alpha1")


def body(exc: ApiException) -> dict:
    return json.loads(exc.body)


def solver(name: str, **spec) -> dict:
    return {"apiVersion": "nodecore.fluidos.eu/v1alpha1", "kind": "Solver",
            "metadata": {"name": name, "namespace": "fluidos"},
            "spec": {"intentID": "intent-1", "findCandidate": True, **spec}}


def deployment(name: str, labels=None, gpu: str | None = None) -> client.V1Deployment:
    labels = labels or {"app": name}
    res = client.V1ResourceRequirements(limits={"nvidia.com/gpu": gpu}) if gpu else None
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="nginx:1.27",
                                                                     resources=res)]))))


@pytest.fixture
def core(kube_api_client):
    return client.CoreV1Api(kube_api_client)


@pytest.fixture
def apps(kube_api_client):
    return client.AppsV1Api(kube_api_client)


@pytest.fixture
def batch(kube_api_client):
    return client.BatchV1Api(kube_api_client)


@pytest.fixture
def custom(kube_api_client, core):
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="fluidos")))
    return client.CustomObjectsApi(kube_api_client)


@pytest.fixture
def dyn(kube_api_client, tmp_path):
    return DynamicClient(kube_api_client, cache_file=str(tmp_path / "discovery.json"))


# --- discovery and configuration ------------------------------------------------------------


def test_discovery_lists_builtin_and_crd_groups(kube_api_client, kube_emulator):
    groups = {g.name: g for g in client.ApisApi(kube_api_client).get_api_versions().groups}
    for g in ("apps", "batch", "networking.k8s.io", "autoscaling", "nodecore.fluidos.eu", "advertisement.fluidos.eu",
              "reservation.fluidos.eu", "network.fluidos.eu", "offloading.liqo.io", "capsule.clastix.io",
              "authentication.liqo.io"):
        assert g in groups
    assert groups["capsule.clastix.io"].preferred_version.version == "v1beta2"
    assert [v.version for v in groups["capsule.clastix.io"].versions] == ["v1beta2", "v1beta1"]
    assert client.CoreApi(kube_api_client).get_api_versions().versions == ["v1"]
    res = {r.name: r for r in client.CoreV1Api(kube_api_client).get_api_resources().resources}
    assert res["namespaces"].namespaced is False and res["pods"].namespaced is True
    assert "pods/status" in res and res["pods/status"].verbs == ["get", "patch", "update"]
    assert client.VersionApi(kube_api_client).get_code().git_version.startswith("v1.")


def test_dynamic_client_discovers_crds(dyn, custom):
    solvers = dyn.resources.get(api_version="nodecore.fluidos.eu/v1alpha1", kind="Solver")
    assert solvers.namespaced and solvers.name == "solvers"
    solvers.create(body=solver("dyn"), namespace="fluidos")
    assert solvers.get(name="dyn", namespace="fluidos").spec.intentID == "intent-1"
    tenants = dyn.resources.get(api_version="capsule.clastix.io/v1beta2", kind="Tenant")
    assert tenants.namespaced is False


def test_kubeconfig_load_and_bad_token(kube_emulator):
    cfg = client.Configuration()
    config.load_kube_config(config_file=kube_emulator.kubeconfig_path(), client_configuration=cfg)
    assert cfg.host == kube_emulator.url
    with client.ApiClient(cfg) as ac:
        assert client.CoreV1Api(ac).read_namespace("default").status.phase == "Active"
    bad = client.Configuration(host=kube_emulator.url, api_key={"BearerToken": "Bearer wrong"})
    with client.ApiClient(bad) as ac:
        with pytest.raises(ApiException) as e:
            client.CoreV1Api(ac).list_namespace()
    assert e.value.status == 401 and body(e.value)["reason"] == "Unauthorized"


# --- CRUD, conflicts, errors ----------------------------------------------------------------


def test_create_get_conflicts_and_not_found(core):
    cm = core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="a", labels={"app": "x"}), data={"k": "v"}))
    assert cm.metadata.uid and cm.metadata.creation_timestamp and int(cm.metadata.resource_version) > 0
    assert cm.metadata.managed_fields[0].manager == "OpenAPI-Generator"
    assert cm.metadata.managed_fields[0].fields_v1 == {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a")))
    assert e.value.status == 409
    assert body(e.value) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                             "message": 'configmaps "a" already exists', "reason": "AlreadyExists",
                             "details": {"name": "a", "group": "", "kind": "configmaps"}, "code": 409}
    for call in (lambda: core.read_namespaced_config_map("nope", "default"),
                 lambda: core.delete_namespaced_config_map("nope", "default")):
        with pytest.raises(ApiException) as e:
            call()
        assert e.value.status == 404 and body(e.value)["reason"] == "NotFound"
        assert body(e.value)["message"] == 'configmaps "nope" not found'
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("missing", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a")))
    assert e.value.status == 404 and body(e.value)["message"] == 'namespaces "missing" not found'
    gen = core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(generate_name="job-")))
    assert gen.metadata.name.startswith("job-") and len(gen.metadata.name) == 9


def test_optimistic_concurrency(core, custom):
    cm = core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="c"), data={"n": "1"}))
    cm.data["n"] = "2"
    fresh = core.replace_namespaced_config_map("c", "default", cm)
    assert int(fresh.metadata.resource_version) > int(cm.metadata.resource_version)
    cm.data["n"] = "3"   # still carries the old resourceVersion
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("c", "default", cm)
    assert e.value.status == 409 and body(e.value)["reason"] == "Conflict"
    assert body(e.value)["message"] == ('Operation cannot be fulfilled on configmaps "c": the object has been '
                                        "modified; please apply your changes to the latest version and try again")
    # Custom resources refuse unconditional updates.
    custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", solver("s"))
    with pytest.raises(ApiException) as e:
        custom.replace_namespaced_custom_object(*NODECORE, "fluidos", "solvers", "s", solver("s"))
    assert e.value.status == 422 and "must be specified for an update" in body(e.value)["message"]
    # A merge patch carrying a stale resourceVersion is a precondition.
    with pytest.raises(ApiException) as e:
        custom.patch_namespaced_custom_object(*NODECORE, "fluidos", "solvers", "s",
                                              {"metadata": {"resourceVersion": "1"}, "spec": {"intentID": "x"}})
    assert e.value.status == 409


def test_dry_run_does_not_persist(core):
    out = core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="d")),
                                            dry_run="All")
    assert out.metadata.name == "d" and out.metadata.uid
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("d", "default")


# --- selectors and pagination ---------------------------------------------------------------


def test_label_and_field_selectors(core):
    for name, labels in (("a", {"tier": "gpu", "zone": "eu"}), ("b", {"tier": "cpu", "zone": "us"}),
                         ("c", {"tier": "gpu"}), ("d", {})):
        core.create_namespaced_config_map("default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels=labels)))

    def names(**kw):
        return [c.metadata.name for c in core.list_namespaced_config_map("default", **kw).items]

    assert names(label_selector="tier=gpu") == ["a", "c"]
    assert names(label_selector="tier==gpu,zone=eu") == ["a"]
    assert names(label_selector="tier!=gpu") == ["b", "d"]
    assert names(label_selector="zone in (eu, us)") == ["a", "b"]
    assert names(label_selector="zone notin (eu)") == ["b", "c", "d"]
    assert names(label_selector="zone") == ["a", "b"]
    assert names(label_selector="!zone") == ["c", "d"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b,metadata.namespace=default") == ["a", "c", "d"]
    assert [c.metadata.name for c in core.list_config_map_for_all_namespaces(label_selector="tier").items] == \
        ["a", "b", "c"]
    with pytest.raises(ApiException) as e:
        names(label_selector="tier in (gpu")
    assert e.value.status == 400
    with pytest.raises(ApiException) as e:
        names(field_selector="data.k=v")
    assert e.value.status == 400 and body(e.value)["reason"] == "BadRequest"


def test_pagination(core):
    for i in range(5):
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"p{i}")))
    page = core.list_namespaced_config_map("default", limit=2)
    seen = [c.metadata.name for c in page.items]
    assert page.metadata.remaining_item_count == 3
    while page.metadata._continue:
        page = core.list_namespaced_config_map("default", limit=2, _continue=page.metadata._continue)
        seen += [c.metadata.name for c in page.items]
    assert seen == [f"p{i}" for i in range(5)]


# --- patch flavours and server-side apply ----------------------------------------------------


def test_patch_flavours(apps, custom):
    apps.create_namespaced_deployment("default", deployment("web", gpu="1"))
    # Strategic merge (the client's default for dicts on built-in kinds): containers merge by name.
    d = apps.patch_namespaced_deployment("web", "default", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "nginx:1.28"}, {"name": "sidecar", "image": "busybox:1"}]}}}})
    cs = {c.name: c for c in d.spec.template.spec.containers}
    assert cs["main"].image == "nginx:1.28" and cs["main"].resources.limits == {"nvidia.com/gpu": "1"}
    assert "sidecar" in cs and d.metadata.generation == 2
    # JSON patch (a list body), including a failing test op.
    d = apps.patch_namespaced_deployment("web", "default", [{"op": "replace", "path": "/spec/replicas", "value": 3}])
    assert d.spec.replicas == 3
    with pytest.raises(ApiException) as e:
        apps.patch_namespaced_deployment("web", "default", [{"op": "test", "path": "/spec/replicas", "value": 9}])
    assert e.value.status == 422
    # Merge patch on a custom resource; strategic merge is refused there.
    custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", solver("s", reserveAndBuy=True))
    s = custom.patch_namespaced_custom_object(*NODECORE, "fluidos", "solvers", "s", {"spec": {"reserveAndBuy": None}})
    assert "reserveAndBuy" not in s["spec"] and s["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as e:
        custom.patch_namespaced_custom_object(*NODECORE, "fluidos", "solvers", "s", {"spec": {}},
                                              _content_type="application/strategic-merge-patch+json")
    assert e.value.status == 415


def test_server_side_apply(dyn, core, kube_api_client):
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "namespace": "default",
                                                                      "labels": {"owner": "flare"}},
                "data": {"a": "1", "b": "2"}}
    created = cms.server_side_apply(body=manifest, field_manager="flare").to_dict()
    assert created["data"] == {"a": "1", "b": "2"}
    assert [(m["manager"], m["operation"]) for m in created["metadata"]["managedFields"]] == [("flare", "Apply")]
    core.patch_namespaced_config_map("ssa", "default", {"data": {"a": "changed", "c": "3"}}, field_manager="ops")
    manifest["data"] = {"a": "1"}        # drop b, re-assert a (now owned by "ops")
    with pytest.raises(ApiException) as e:
        cms.server_side_apply(body=manifest, field_manager="flare")
    assert e.value.status == 409
    assert body(e.value)["message"] == 'Apply failed with 1 conflict: conflict with "ops" using v1: .data.a'
    forced = cms.server_side_apply(body=manifest, field_manager="flare", force_conflicts=True).to_dict()
    assert forced["data"] == {"a": "1", "c": "3"}    # b removed (only flare owned it), c kept (ops owns it)
    owners = {m["manager"]: m["fieldsV1"] for m in forced["metadata"]["managedFields"]}
    assert owners["flare"]["f:data"] == {"f:a": {}} and owners["ops"] == {"f:data": {"f:c": {}}}
    # Raw ApiClient.call_api: apply without a fieldManager is a 400.
    method, url, headers, data, _ = kube_api_client.param_serialize(
        "PATCH", "/api/v1/namespaces/default/configmaps/ssa",
        header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
        body=manifest, auth_settings=["BearerToken"])
    resp = kube_api_client.call_api(method, url, headers, data)
    resp.read()
    assert resp.status == 400


def test_server_side_apply_on_custom_resources(dyn, custom):
    slices = dyn.resources.get(api_version="authentication.liqo.io/v1beta1", kind="ResourceSlice")
    base = {"apiVersion": "authentication.liqo.io/v1beta1", "kind": "ResourceSlice",
            "metadata": {"name": "rs", "namespace": "fluidos"},
            "spec": {"class": "default", "resources": {"cpu": "4", "memory": "8Gi"}}}
    slices.create(body=base)    # created by someone else (an Update manager)
    out = slices.server_side_apply(body={"apiVersion": "authentication.liqo.io/v1beta1", "kind": "ResourceSlice",
                                         "metadata": {"name": "rs", "namespace": "fluidos"},
                                         "spec": {"resources": {"nvidia.com/gpu": "2"}}}, field_manager="flare")
    out = out.to_dict()
    assert out["spec"]["resources"] == {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "2"}
    assert out["spec"]["class"] == "default" and out["metadata"]["generation"] == 2


# --- status subresource, schema validation, pruning, defaults --------------------------------


def test_status_subresource(custom):
    created = custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", {
        **solver("s"), "status": {"solverPhase": {"phase": "Solved"}}})
    assert "status" not in created and created["metadata"]["generation"] == 1
    s = custom.patch_namespaced_custom_object_status(*NODECORE, "fluidos", "solvers", "s", {
        "status": {"solverPhase": {"phase": "Idle", "message": "Solver initialized"}}})
    assert s["status"]["solverPhase"]["phase"] == "Idle" and s["metadata"]["generation"] == 1
    s["status"]["solverPhase"]["phase"] = "Hacked"
    s["spec"]["intentID"] = "intent-2"
    s = custom.replace_namespaced_custom_object(*NODECORE, "fluidos", "solvers", "s", s)
    assert s["status"]["solverPhase"]["phase"] == "Idle"      # main resource ignores status
    assert s["spec"]["intentID"] == "intent-2" and s["metadata"]["generation"] == 2
    s["spec"]["intentID"] = "ignored"
    s["status"]["solverPhase"]["phase"] = "Running"
    s = custom.replace_namespaced_custom_object_status(*NODECORE, "fluidos", "solvers", "s", s)
    assert s["spec"]["intentID"] == "intent-2" and s["status"]["solverPhase"]["phase"] == "Running"
    with pytest.raises(ApiException) as e:
        custom.patch_namespaced_custom_object_status(*NODECORE, "fluidos", "solvers", "s",
                                                     {"status": {"solverPhase": {"phase": None},
                                                                 "findCandidate": 3}})
    assert e.value.status == 422
    fields = {c["field"] for c in body(e.value)["details"]["causes"]}
    assert fields == {"status.solverPhase.phase", "status.findCandidate"}


def test_crd_schema_validation_pruning_and_defaults(custom, core, kube_api_client):
    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", {
            "apiVersion": "nodecore.fluidos.eu/v1alpha1", "kind": "Solver", "metadata": {"name": "bad"},
            "spec": {"findCandidate": "yes", "selector": {}}})
    err = body(e.value)
    assert e.value.status == 422 and err["reason"] == "Invalid"
    assert err["details"]["kind"] == "Solver" and err["details"]["group"] == "nodecore.fluidos.eu"
    assert {(c["field"], c["reason"]) for c in err["details"]["causes"]} == {
        ("spec.intentID", "FieldValueRequired"), ("spec.selector.flavorType", "FieldValueRequired"),
        ("spec.findCandidate", "FieldValueTypeInvalid")}
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team")))
    nso = {"apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
           "metadata": {"name": "offloading"}, "spec": {"podOffloadingStrategy": "Everywhere"}}
    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object("offloading.liqo.io", "v1beta1", "team", "namespaceoffloadings", nso)
    assert body(e.value)["details"]["causes"][0]["reason"] == "FieldValueNotSupported"
    # Unknown fields are pruned with a Warning header (fieldValidation=Warn, the default) ...
    nso["spec"] = {"podOffloadingStrategy": "Remote", "bogus": 1}
    out = custom.create_namespaced_custom_object("offloading.liqo.io", "v1beta1", "team", "namespaceoffloadings", nso)
    assert "bogus" not in out["spec"]
    assert out["spec"]["namespaceMappingStrategy"] == "DefaultName"          # CRD default applied
    # ... and rejected with fieldValidation=Strict.
    nso["metadata"]["name"] = "other"
    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object("offloading.liqo.io", "v1beta1", "team", "namespaceoffloadings", nso,
                                               field_validation="Strict")
    assert e.value.status == 400 and 'unknown field "spec.bogus"' in body(e.value)["message"]


def test_warning_header_on_pruned_field(kube_api_client, custom):
    data, _, headers = custom.create_namespaced_custom_object_with_http_info(
        *NODECORE, "fluidos", "solvers", {**solver("w"), "spec": {"intentID": "i", "colour": "red"}})
    assert headers["Warning"] == '299 - "unknown field \\"spec.colour\\""'
    assert "colour" not in data["spec"]


def test_builtin_validation_rules(batch, apps, core):
    job = client.V1Job(metadata=client.V1ObjectMeta(name="train"), spec=client.V1JobSpec(
        template=client.V1PodTemplateSpec(spec=client.V1PodSpec(containers=[
            client.V1Container(name="t", image="pytorch:2", resources=client.V1ResourceRequirements(
                limits={"nvidia.com/gpu": "2"}, requests={"nvidia.com/gpu": "1"}))]))))
    with pytest.raises(ApiException) as e:
        batch.create_namespaced_job("default", job)
    msg = body(e.value)["message"]
    assert 'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"' in msg
    assert "must be equal to nvidia.com/gpu limit of 2" in msg
    job.spec.template.spec.restart_policy = "Never"
    job.spec.template.spec.containers[0].resources.requests = None
    created = batch.create_namespaced_job("default", job)
    assert created.spec.backoff_limit == 6 and created.spec.completions == 1
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": created.metadata.uid}
    assert created.spec.template.metadata.labels["job-name"] == "train"
    created.spec.template.spec.containers[0].image = "pytorch:3"
    with pytest.raises(ApiException) as e:
        batch.replace_namespaced_job("train", "default", created)
    assert "spec.template: Invalid value" in body(e.value)["message"] and "field is immutable" in body(e.value)["message"]
    bad = deployment("web", labels={"app": "web"})
    bad.spec.template.metadata.labels = {"app": "other"}
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment("default", bad)
    assert "`selector` does not match template `labels`" in body(e.value)["message"]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service("default", client.V1Service(
            metadata=client.V1ObjectMeta(name="9svc"), spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
    assert body(e.value)["details"]["causes"][0]["field"] == "metadata.name"
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name="lbl", labels={"intent": "x" * 64})))
    assert e.value.status == 422 and "must be no more than 63 characters" in body(e.value)["message"]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod("default", client.V1Pod(metadata=client.V1ObjectMeta(name="p"), spec=client.V1PodSpec(
            containers=[client.V1Container(name="c", image="x", resources=client.V1ResourceRequirements(
                limits={"gpu": "1"}))])))
    assert "must be a standard resource type or fully qualified" in body(e.value)["message"]


def test_builtin_defaults_and_allocations(core, apps):
    d = apps.create_namespaced_deployment("default", deployment("web"))
    assert (d.spec.replicas, d.spec.revision_history_limit, d.spec.progress_deadline_seconds) == (1, 10, 600)
    assert d.spec.strategy.rolling_update.max_surge == "25%"
    assert d.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    assert d.spec.template.spec.restart_policy == "Always"
    svc = core.create_namespaced_service("default", client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[client.V1ServicePort(port=80)])))
    ip = svc.spec.cluster_ip
    assert ip.startswith("10.96.") and svc.spec.ports[0].target_port == 80
    svc.spec.cluster_ip = None           # omitted on update: the allocated address is kept
    svc.spec.cluster_ips = None
    assert core.replace_namespaced_service("web", "default", svc).spec.cluster_ip == ip
    s = core.create_namespaced_secret("default", client.V1Secret(metadata=client.V1ObjectMeta(name="tok"),
                                                                 string_data={"token": "s3cr3t"}))
    assert s.data == {"token": base64.b64encode(b"s3cr3t").decode()} and s.string_data is None and s.type == "Opaque"
    ns = core.read_namespace("default")
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == "default" and ns.spec.finalizers == ["kubernetes"]


# --- watch ---------------------------------------------------------------------------------------


def test_watch_events_from_resource_version(core):
    lst = core.list_namespaced_config_map("default")
    rv = lst.metadata.resource_version

    def churn():
        time.sleep(0.1)
        core.create_namespaced_config_map("default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="w", labels={"sel": "yes"})))
        core.patch_namespaced_config_map("w", "default", {"data": {"k": "v"}})
        core.patch_namespaced_config_map("w", "default", {"metadata": {"labels": {"sel": "no"}}})
        core.delete_namespaced_config_map("w", "default")

    t = threading.Thread(target=churn)
    t.start()
    all_events, selected = [], []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=2):
        all_events.append((ev["type"], ev["object"].metadata.name, ev["object"].data))
        if ev["type"] == "DELETED":
            w.stop()
    t.join()
    assert [e[0] for e in all_events] == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    assert all_events[1][2] == {"k": "v"}
    # The same history through a label selector: leaving the selection is a DELETED event.
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=rv,
                       label_selector="sel=yes", timeout_seconds=1):
        selected.append(ev["type"])
        if ev["type"] == "DELETED":
            w.stop()
    assert selected == ["ADDED", "MODIFIED", "DELETED"]


def test_watch_without_resource_version_lists_first_and_times_out(core):
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pre")))
    start = time.monotonic()
    events = [(e["type"], e["object"].metadata.name)
              for e in watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=1)]
    assert events == [("ADDED", "pre")]
    assert 0.9 < time.monotonic() - start < 3


def test_watch_too_old_resource_version_is_gone(core, kube_emulator):
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
    kube_emulator.compact()
    with pytest.raises(ApiException) as e:
        list(watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1))
    assert e.value.status == 410 and "Expired" in e.value.reason


def test_watch_custom_objects(custom):
    rv = custom.list_namespaced_custom_object(*NODECORE, "fluidos", "solvers")["metadata"]["resourceVersion"]
    custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", solver("ws"))
    custom.patch_namespaced_custom_object_status(*NODECORE, "fluidos", "solvers", "ws",
                                                 {"status": {"solverPhase": {"phase": "Idle"}}})
    events, w = [], watch.Watch()
    for e in w.stream(custom.list_namespaced_custom_object, *NODECORE, "fluidos", "solvers",
                      resource_version=rv, timeout_seconds=2):
        events.append((e["type"], (e["object"].get("status") or {}).get("solverPhase")))
        if e["type"] == "MODIFIED":
            w.stop()
    assert events == [("ADDED", None), ("MODIFIED", {"phase": "Idle"})]


# --- deletion: namespaces, finalizers, garbage collection -------------------------------------


def test_namespace_delete_cascades(core, custom):
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team")))
    core.create_namespaced_config_map("team", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a")))
    core.create_namespaced_config_map("team", client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="held", finalizers=["example.com/hold"])))
    custom.create_namespaced_custom_object("offloading.liqo.io", "v1beta1", "team", "namespaceoffloadings", {
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
        "metadata": {"name": "offloading"}, "spec": {}})
    ns = core.delete_namespace("team")
    assert ns["status"]["phase"] == "Terminating"        # the apiserver returns the namespace itself
    assert [c.metadata.name for c in core.list_namespaced_config_map("team").items] == ["held"]
    assert custom.list_namespaced_custom_object("offloading.liqo.io", "v1beta1", "team",
                                                "namespaceoffloadings")["items"] == []
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map("team", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late")))
    assert e.value.status == 403 and "is being terminated" in body(e.value)["message"]
    held = core.read_namespaced_config_map("held", "team")
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", "team", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as e:
        core.read_namespace("team")
    assert e.value.status == 404


def test_finalizers_hold_deletion(core):
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="f", finalizers=["flare.io/cleanup"])))
    out = core.delete_namespaced_config_map("f", "default")
    assert out["kind"] == "ConfigMap" and out["metadata"]["deletionTimestamp"]   # the object, not a Status
    cm = core.read_namespaced_config_map("f", "default")
    assert cm.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("f", "default", {"metadata": {"finalizers": ["flare.io/cleanup", "x.io/y"]}})
    assert e.value.status == 422
    core.patch_namespaced_config_map("f", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("f", "default")


def test_owner_reference_garbage_collection(core, batch):
    owner = core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    for n in ("dep1", "dep2"):
        core.create_namespaced_config_map("default", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=n, owner_references=[ref])))
    core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="grandchild", owner_references=[client.V1OwnerReference(
            api_version="v1", kind="ConfigMap", name="dep1",
            uid=core.read_namespaced_config_map("dep1", "default").metadata.uid)])))
    status = core.delete_namespaced_config_map("owner", "default")
    assert status["status"] == "Success" and status["details"]["name"] == "owner"
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == []
    # Orphan keeps dependents and strips the reference.
    owner = core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    ref.uid = owner.metadata.uid
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="kept", owner_references=[ref])))
    core.delete_namespaced_config_map("owner", "default", propagation_policy="Orphan")
    kept = core.read_namespaced_config_map("kept", "default")
    assert kept.metadata.owner_references is None
    # A dependent whose owner does not exist (wrong uid) is collected straight away.
    core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="dangling", owner_references=[client.V1OwnerReference(api_version="v1", kind="ConfigMap",
                                                                   name="kept", uid="not-the-uid")])))
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dangling", "default")


def test_job_delete_orphans_pods_by_default(batch, core, kube_api_client):
    job = batch.create_namespaced_job("default", client.V1Job(metadata=client.V1ObjectMeta(name="j"), spec=client.V1JobSpec(
        template=client.V1PodTemplateSpec(spec=client.V1PodSpec(restart_policy="Never", containers=[
            client.V1Container(name="c", image="busybox:1")])))))
    core.create_namespaced_pod("default", client.V1Pod(metadata=client.V1ObjectMeta(
        name="j-pod", owner_references=[client.V1OwnerReference(api_version="batch/v1", kind="Job", name="j",
                                                                uid=job.metadata.uid, controller=True)]),
        spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(name="c", image="busybox:1")])))
    _, _, headers = batch.delete_namespaced_job_with_http_info("j", "default")
    assert "child pods are preserved by default" in headers["Warning"]
    assert core.read_namespaced_pod("j-pod", "default").metadata.owner_references is None


def test_delete_collection(core):
    for n, tier in (("a", "x"), ("b", "x"), ("c", "y")):
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(
            name=n, labels={"tier": tier})))
    core.delete_collection_namespaced_config_map("default", label_selector="tier=x")
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == ["c"]


def test_cluster_scoped_custom_resource_served_in_two_versions(custom):
    tenant = {"apiVersion": "capsule.clastix.io/v1beta2", "kind": "Tenant", "metadata": {"name": "flare-acme"},
              "spec": {"owners": [{"kind": "User", "name": "alice"}], "forceTenantPrefix": True}}
    out = custom.create_cluster_custom_object("capsule.clastix.io", "v1beta2", "tenants", tenant)
    assert out["spec"]["owners"][0]["clusterRoles"] == ["admin", "capsule-namespace-deleter"]   # CRD default
    old = custom.get_cluster_custom_object("capsule.clastix.io", "v1beta1", "tenants", "flare-acme")
    assert old["apiVersion"] == "capsule.clastix.io/v1beta1" and old["metadata"]["uid"] == out["metadata"]["uid"]
    with pytest.raises(ApiException) as e:
        custom.create_cluster_custom_object("capsule.clastix.io", "v1beta2", "tenants",
                                            {**tenant, "metadata": {"name": "t2"}, "spec": {}})
    assert e.value.status == 422


# --- fault injection and the request log ------------------------------------------------------


def test_injected_errors(core, kube_emulator, custom):
    fault = kube_emulator.inject(verb="list", resource="configmaps", status=500, times=1)
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map("default")
    assert e.value.status == 500 and body(e.value)["reason"] == "InternalError"
    assert core.list_namespaced_config_map("default").items == [] and fault.hits == 1
    kube_emulator.inject(verb="create", resource="solvers", status=429, times=1, retry_after=2)
    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", solver("s"))
    assert e.value.status == 429 and e.value.headers["Retry-After"] == "2"
    assert body(e.value)["details"]["retryAfterSeconds"] == 2
    kube_emulator.inject(verb="patch", resource="solvers/status", status=409, times=1)
    custom.create_namespaced_custom_object(*NODECORE, "fluidos", "solvers", solver("s"))
    with pytest.raises(ApiException) as e:
        custom.patch_namespaced_custom_object_status(*NODECORE, "fluidos", "solvers", "s", {"status": {}})
    assert e.value.status == 409 and body(e.value)["reason"] == "Conflict"
    kube_emulator.inject(verb="get", resource="*", status=503, times=None)
    for _ in range(2):
        with pytest.raises(ApiException) as e:
            core.read_namespace("default")
        assert e.value.status == 503
    kube_emulator.clear_faults()
    assert core.read_namespace("default").metadata.name == "default"
    log = kube_emulator.requests_for(resource="solvers")
    assert [(r.verb, r.subresource, r.status) for r in log] == [("create", "", 429), ("create", "", 201),
                                                                 ("patch", "status", 409)]
    assert log[1].body["metadata"]["name"] == "s" and log[1].user_agent.startswith("OpenAPI-Generator")


def test_delay_and_hang_cause_client_timeouts(core, kube_emulator):
    kube_emulator.delay(0.5, verb="create", resource="configmaps")
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="slow")),
                                          _request_timeout=0.2)
    time.sleep(0.5)   # the server still processes a request the client gave up on
    assert core.read_namespaced_config_map("slow", "default").metadata.name == "slow"
    hang = kube_emulator.hang(verb="get", resource="namespaces")
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        core.read_namespace("default", _request_timeout=0.2)     # urllib3 retries idempotent reads
    assert time.monotonic() - started >= 0.2 and hang.hits >= 1
    kube_emulator.release(hang)
    assert core.read_namespace("default").metadata.name == "default"
