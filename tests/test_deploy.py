"""The deployment artefacts under deploy/: image, entrypoint roles, compose file, Kubernetes manifests.

Docker is not needed (nor used): the Dockerfile is checked statically (base image, user, every COPY
source exists and every runtime package is copied, entrypoint and health check wiring); the tree
its COPY instructions produce is staged in a temporary directory, where Django's checks, the ASGI
and Celery apps and the build's collectstatic (manifest storage) run; and the entrypoint roles run
against the local PostgreSQL and Redis: the migrate role (twice: idempotent), wait-migrations, the
web role with its probes, the secret-key guard.

KUBERNETES_API_USED is the list of what FLARE's Kubernetes backend does on the consumer cluster
(FLUIDOS.md §6). deploy/kubernetes/rbac.yaml must grant exactly that: the backend is checked
against the same list.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
ENTRYPOINT = DEPLOY / "entrypoint.sh"
SECRET_TEMPLATE = K8S / "secret.example.yaml"

FLARE_NAMESPACE = "flare-system"
SERVICE_ACCOUNT = ("flare-system", "flare")
FLUIDOS = "fluidos"  # scope: granted only in the FLUIDOS namespace (FLARE_FLUIDOS_NAMESPACE)
CLUSTER = "cluster"  # scope: ClusterRole + ClusterRoleBinding

CRUD = frozenset({"get", "list", "watch", "create", "update", "patch", "delete"})

# (apiGroup, resource) → (verbs, scope). FLUIDOS.md §6 plus the provider node sync.
KUBERNETES_API_USED: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    # FLUIDOS, namespace fluidos. Created by FLARE: Solver, Reservation, Allocation.
    ("nodecore.fluidos.eu", "solvers"): (frozenset({"get", "create", "delete"}), FLUIDOS),
    ("nodecore.fluidos.eu", "allocations"): (frozenset({"get", "create", "delete"}), FLUIDOS),
    ("nodecore.fluidos.eu", "flavors"): (frozenset({"get", "list"}), FLUIDOS),
    ("advertisement.fluidos.eu", "discoveries"): (frozenset({"get", "delete"}), FLUIDOS),
    ("advertisement.fluidos.eu", "peeringcandidates"): (frozenset({"get", "list", "watch"}), FLUIDOS),
    ("reservation.fluidos.eu", "reservations"): (frozenset({"get", "create", "delete"}), FLUIDOS),
    ("reservation.fluidos.eu", "transactions"): (frozenset({"get", "delete"}), FLUIDOS),
    ("reservation.fluidos.eu", "contracts"): (frozenset({"get", "delete"}), FLUIDOS),
    # ConfigMap fluidos/fluidos-node-identity (resourceNames-restricted).
    ("", "configmaps"): (frozenset({"get"}), FLUIDOS),
    # Liqo: ResourceSlice in liqo-tenant-<liqoID> (GPU capacity §6.7, teardown §6.11);
    # NamespaceOffloading `offloading` in each workload namespace.
    ("authentication.liqo.io", "resourceslices"): (frozenset({"get", "patch", "delete"}), CLUSTER),
    ("offloading.liqo.io", "namespaceoffloadings"): (frozenset({"get", "create", "delete"}), CLUSTER),
    # Capsule Tenant flare-<tenant> (cluster-scoped).
    ("capsule.clastix.io", "tenants"): (frozenset({"get", "list", "create"}), CLUSTER),
    # Workload namespaces and workloads.
    ("", "namespaces"): (frozenset({"get", "list", "create", "delete"}), CLUSTER),
    ("apps", "deployments"): (CRUD, CLUSTER),
    ("batch", "jobs"): (CRUD, CLUSTER),
    ("", "services"): (CRUD, CLUSTER),
    ("networking.k8s.io", "ingresses"): (CRUD, CLUSTER),
    ("", "persistentvolumeclaims"): (CRUD, CLUSTER),
    ("autoscaling", "horizontalpodautoscalers"): (CRUD, CLUSTER),
    ("", "secrets"): (frozenset({"get"}), CLUSTER),
    ("", "pods"): (frozenset({"get", "list", "watch"}), CLUSTER),
    # Provider node sync (node-role.fluidos.eu/resources=true; annotations pushed back).
    ("", "nodes"): (frozenset({"get", "list", "watch", "patch"}), CLUSTER),
}
RESOURCE_NAMES = {("", "configmaps"): ["fluidos-node-identity"]}

COMPOSE_SERVICES = {"postgres", "redis", "migrate", "web", "worker", "beat"}
ROLES = {"web", "worker", "beat", "migrate", "wait-migrations", "seed", "manage", "healthcheck"}
PROBE_HOST = "localhost"
# Read by settings.py but meaningful only inside the test suite.
TEST_ONLY_SETTINGS = {"FLARE_TESTING", "FLARE_TEST_DB_NAME"}
# Read by the entrypoint and the container scripts, not by settings.py.
CONTAINER_SETTINGS = {"FLARE_PORT", "FLARE_WORKERS", "FLARE_BEAT_SCHEDULE", "FLARE_DB_WAIT_SECONDS",
                      "FLARE_MIGRATION_WAIT_SECONDS", "FLARE_MIGRATION_WAIT_INTERVAL", "FLARE_HTTP_PORT",
                      "FLARE_HEALTHCHECK_TIMEOUT"}


# --- helpers ---------------------------------------------------------------------------------------


def kubernetes_version() -> str:
    """The newest Kubernetes version kubernetes_validate ships schemas for, capped at 1.33."""
    versions = sorted({tuple(int(p) for p in v.split(".")) for v in all_versions()})
    chosen = [v for v in versions if v[:2] <= (1, 33)]
    assert chosen, f"kubernetes_validate ships no version <= 1.33: {versions}"
    return ".".join(str(p) for p in chosen[-1])


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def all_manifests(include_template: bool = True) -> list[dict]:
    return [doc for path in manifest_files() if include_template or path != SECRET_TEMPLATE
            for doc in documents(path)]


def find(kind: str, name: str) -> dict:
    matches = [doc for doc in all_manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def deployments() -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in all_manifests() if doc["kind"] == "Deployment"}


def pod_specs() -> dict[str, dict]:
    specs = {name: doc["spec"]["template"]["spec"] for name, doc in deployments().items()}
    specs["job/flare-migrate"] = find("Job", "flare-migrate")["spec"]["template"]["spec"]
    return specs


def configmap() -> dict[str, str]:
    return find("ConfigMap", "flare-config")["data"]


def settings_variables() -> set[str]:
    """FLARE_* variables flare_portal/settings.py and celery.py read from the environment."""
    names = set()
    for module in ("settings.py", "celery.py"):
        text = (ROOT / "flare_portal" / module).read_text(encoding="utf-8")
        names |= set(re.findall(r"""env_\w+\(\s*["'](FLARE_[A-Z0-9_]+)["']""", text))
        names |= set(re.findall(r"""environ(?:\.get|\.setdefault)?\(\s*["'](FLARE_[A-Z0-9_]+)["']""", text))
        names |= set(re.findall(r"""environ\[\s*["'](FLARE_[A-Z0-9_]+)["']\s*\]""", text))
    return names


def parse_dockerfile(path: Path = DEPLOY / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continuation"
    return instructions


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), arguments
    return value


def copy_sources() -> list[str]:
    sources = []
    for keyword, arguments in parse_dockerfile():
        if keyword in {"COPY", "ADD"}:
            words = [word for word in shlex.split(arguments) if not word.startswith("--")]
            assert len(words) >= 2, arguments
            sources += words[:-1]
    return sources


def entrypoint_roles() -> set[str]:
    text = ENTRYPOINT.read_text(encoding="utf-8")
    block = text[text.index('case "$role" in'):text.rindex("esac")]
    return {match for match in re.findall(r"^\s{2}([a-z][a-z-]*)\)", block, flags=re.MULTILINE)}


def script_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["FLARE_PYTHON"] = sys.executable
    env["DJANGO_SETTINGS_MODULE"] = "flare_portal.settings"
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env or script_env(),
                          capture_output=True, text=True, timeout=timeout)


# --- Kubernetes manifests ----------------------------------------------------------------------------


def test_kubernetes_version_is_one_kubernetes_validate_ships():
    assert kubernetes_version() == "1.33.0"


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_validates_strictly(path):
    version = kubernetes_version()
    for doc in documents(path):
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_rejects_unknown_fields():
    """Control: the validation above would notice a misspelt field."""
    deployment = json.loads(json.dumps(deployments()["flare-web"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_version(), strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_template():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["kind"] == "Kustomization"
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in manifest_files()} - {SECRET_TEMPLATE.name}
    # A namespace override would move the FLUIDOS Role out of its namespace.
    assert "namespace" not in kustomization
    assert [image["name"] for image in kustomization["images"]] == ["flare"]


def test_kustomize_build_validates():
    if shutil.which("kustomize"):
        command = ["kustomize", "build", str(K8S)]
    elif shutil.which("kubectl"):
        command = ["kubectl", "kustomize", str(K8S)]
    else:
        pytest.skip("neither kustomize nor kubectl is installed")
    built = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    docs = [doc for doc in yaml.safe_load_all(built) if doc]
    version = kubernetes_version()
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    assert ("Secret", "flare-secrets") not in kinds
    expected = {(doc["kind"], doc["metadata"]["name"]) for doc in all_manifests(include_template=False)}
    assert kinds == expected
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    image = kustomization["images"][0]
    wanted = f"{image.get('newName', 'flare')}:{image['newTag']}"
    for doc in docs:
        if doc["kind"] in {"Deployment", "Job"}:
            spec = doc["spec"]["template"]["spec"]
            for container in spec["containers"] + spec.get("initContainers", []):
                assert container["image"] == wanted


def test_namespaced_objects_sit_in_flare_system_except_the_fluidos_grant():
    for doc in all_manifests():
        kind, meta = doc["kind"], doc["metadata"]
        if kind in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
            assert "namespace" not in meta, kind
        elif kind in {"Role", "RoleBinding"}:
            assert meta["namespace"] == configmap()["FLARE_FLUIDOS_NAMESPACE"]
        else:
            assert meta["namespace"] == FLARE_NAMESPACE, (kind, meta["name"])
    namespace = find("Namespace", FLARE_NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# --- RBAC ---------------------------------------------------------------------------------------------


def rbac_objects() -> list[dict]:
    return [doc for doc in all_manifests() if doc["apiVersion"].startswith("rbac.authorization.k8s.io/")]


def granted() -> dict[tuple[str, str, str], set[str]]:
    """(apiGroup, resource, scope) → verbs granted to the flare ServiceAccount."""
    roles = {(doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"]): doc
             for doc in rbac_objects() if doc["kind"] in {"ClusterRole", "Role"}}
    grants: dict[tuple[str, str, str], set[str]] = {}
    for binding in rbac_objects():
        if binding["kind"] not in {"ClusterRoleBinding", "RoleBinding"}:
            continue
        subjects = {(s["kind"], s.get("namespace"), s["name"]) for s in binding["subjects"]}
        assert subjects == {("ServiceAccount", *SERVICE_ACCOUNT)}, binding["metadata"]["name"]
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace")
        role_namespace = namespace if ref["kind"] == "Role" else None
        role = roles[(ref["kind"], role_namespace, ref["name"])]
        scope = CLUSTER if binding["kind"] == "ClusterRoleBinding" else namespace
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    grants.setdefault((group, resource, scope), set()).update(rule["verbs"])
    return grants


def test_rbac_has_no_wildcards_and_no_escalation():
    for doc in rbac_objects():
        for rule in doc.get("rules", []):
            assert "nonResourceURLs" not in rule
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert not any("*" in value for value in rule.get(field, [])), (doc["metadata"]["name"], rule)
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"]), rule
            assert "rbac.authorization.k8s.io" not in rule["apiGroups"], rule


def test_rbac_grants_exactly_what_flare_uses():
    fluidos_namespace = configmap()["FLARE_FLUIDOS_NAMESPACE"]
    expected = {(group, resource, fluidos_namespace if scope == FLUIDOS else scope): set(verbs)
                for (group, resource), (verbs, scope) in KUBERNETES_API_USED.items()}
    actual = granted()
    missing = {key: verbs - actual.get(key, set()) for key, verbs in expected.items() if verbs - actual.get(key, set())}
    extra = {key: verbs - expected.get(key, set()) for key, verbs in actual.items() if verbs - expected.get(key, set())}
    assert not missing, f"FLARE needs these and rbac.yaml does not grant them: {missing}"
    assert not extra, f"rbac.yaml grants more than FLARE uses: {extra}"


def test_rbac_restricts_configmaps_to_the_node_identity():
    for doc in rbac_objects():
        for rule in doc.get("rules", []):
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    if (group, resource) in RESOURCE_NAMES:
                        assert rule.get("resourceNames") == RESOURCE_NAMES[(group, resource)]


def test_rbac_custom_resources_match_the_vendored_crds():
    crds = {}
    for path in (DEPLOY / "crds").glob("*.yaml"):
        for doc in documents(path):
            if doc.get("kind") == "CustomResourceDefinition":
                crds[(doc["spec"]["group"], doc["spec"]["names"]["plural"])] = doc["spec"]["scope"]
    for (group, resource), (_, scope) in KUBERNETES_API_USED.items():
        if group.endswith(".fluidos.eu"):
            assert crds.get((group, resource)) == "Namespaced", (group, resource)
            assert scope == FLUIDOS
        elif (group, resource) in crds:
            # Cluster-scoped kinds can only be granted by a ClusterRole.
            assert crds[(group, resource)] == "Namespaced" or scope == CLUSTER


def test_only_web_and_worker_mount_the_service_account_token():
    for name, spec in pod_specs().items():
        assert spec["serviceAccountName"] == "flare"
        assert spec["automountServiceAccountToken"] is (name in {"flare-web", "flare-worker"}), name
    find("ServiceAccount", "flare")


# --- workloads ----------------------------------------------------------------------------------------


def test_replicas_and_rollout_strategies():
    found = deployments()
    assert set(found) == {"flare-web", "flare-worker", "flare-beat"}
    assert found["flare-web"]["spec"]["replicas"] > 1
    assert found["flare-worker"]["spec"]["replicas"] > 1
    assert found["flare-beat"]["spec"]["replicas"] == 1
    # A rolling update would run two beats side by side.
    assert found["flare-beat"]["spec"]["strategy"]["type"] == "Recreate"


def test_container_roles_are_entrypoint_roles():
    roles = entrypoint_roles()
    expected = {"flare-web": "web", "flare-worker": "worker", "flare-beat": "beat", "job/flare-migrate": "migrate"}
    for name, spec in pod_specs().items():
        (container,) = spec["containers"]
        assert "command" not in container, "keep the image's ENTRYPOINT"
        assert container["args"][0] == expected[name]
        assert container["args"][0] in roles
        if name.startswith("flare-"):
            (init,) = spec["initContainers"]
            assert init["args"] == ["wait-migrations"]
    job = find("Job", "flare-migrate")
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_web_probes():
    container = deployments()["flare-web"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8000}
    allowed = configmap()["FLARE_ALLOWED_HOSTS"].split(",")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == "http"
        # Django refuses the pod IP as Host: the probes name a host FLARE_ALLOWED_HOSTS allows.
        assert {"name": "Host", "value": PROBE_HOST} in get["httpHeaders"]
        assert PROBE_HOST in allowed


def test_worker_liveness_uses_the_health_check_script():
    container = deployments()["flare-worker"]["spec"]["template"]["spec"]["containers"][0]
    command = container["livenessProbe"]["exec"]["command"]
    assert command[:2] == ["python", "/app/deploy/healthcheck.py"] and "worker" in command


def test_pods_are_locked_down():
    for name, spec in pod_specs().items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault"
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"]
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]


def test_every_container_reads_the_configmap_then_the_secret():
    for name, spec in pod_specs().items():
        for container in spec["containers"] + spec.get("initContainers", []):
            sources = [next(iter(source.items())) for source in container["envFrom"]]
            assert sources == [("configMapRef", {"name": "flare-config"}),
                               ("secretRef", {"name": "flare-secrets"})], (name, container["name"])


def test_configmap_settings():
    data = configmap()
    assert data["FLARE_FEDERATION"] == "kubernetes"
    assert data["FLARE_FLUIDOS_NAMESPACE"] == "fluidos"
    assert data["FLARE_DEBUG"] == "false"
    assert data["FLARE_KUBECONFIG"] == "", "in-cluster service account"
    known = settings_variables() | CONTAINER_SETTINGS
    assert set(data) <= known, f"unknown settings: {set(data) - known}"
    for key in data:
        assert "PASSWORD" not in key and "SECRET" not in key, f"{key} belongs in the Secret"


def test_secret_is_a_template_with_placeholders_only():
    secrets = [doc for doc in all_manifests() if doc["kind"] == "Secret"]
    assert [doc["metadata"]["name"] for doc in secrets] == ["flare-secrets"]
    (secret,) = documents(SECRET_TEMPLATE)
    assert set(secret["stringData"]) == {"FLARE_SECRET_KEY", "FLARE_DB_PASSWORD"}
    assert all("CHANGE-ME" in value for value in secret["stringData"].values())
    assert "data" not in secret
    assert "kubernetes/secret.yaml" in (DEPLOY / ".gitignore").read_text(encoding="utf-8")


def test_services_ingress_and_budgets_select_the_right_pods():
    pods = {name: doc["spec"]["template"]["metadata"]["labels"] for name, doc in deployments().items()}
    for name, doc in deployments().items():
        selector = doc["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pods[name].items()
    service = find("Service", "flare-web")
    assert service["spec"]["selector"].items() <= pods["flare-web"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    ingress = find("Ingress", "flare-web")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "flare-web", "port": {"name": "http"}}
    budgets = {doc["metadata"]["name"]: doc for doc in all_manifests() if doc["kind"] == "PodDisruptionBudget"}
    assert set(budgets) == {"flare-web", "flare-worker"}
    for name, budget in budgets.items():
        assert budget["spec"]["selector"]["matchLabels"].items() <= pods[name].items()


# --- compose ------------------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_services_and_commands():
    services = compose()["services"]
    assert COMPOSE_SERVICES <= set(services)
    for name in set(services) - COMPOSE_SERVICES:
        assert services[name].get("profiles"), f"extra service {name} must be opt-in (profiles)"
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    roles = entrypoint_roles()
    expected = {"migrate": "migrate", "web": "web", "worker": "worker", "beat": "beat", "seed": "seed"}
    for name, role in expected.items():
        service = services[name]
        assert service["command"] == [role] and role in roles
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["env_file"] == ["flare.env"]
        assert "entrypoint" not in service
    assert services["web"]["ports"] == ["${FLARE_HTTP_PORT:-8000}:8000"]
    assert services["migrate"]["restart"] == "no"


def test_compose_healthchecks_and_start_order():
    services = compose()["services"]
    for name in ("postgres", "redis", "web", "worker", "beat"):
        test = services[name]["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, name
    assert services["web"]["healthcheck"]["test"] == ["CMD", "python", "/app/deploy/healthcheck.py", "web"]
    assert services["worker"]["healthcheck"]["test"][-1] == "worker"
    assert services["beat"]["healthcheck"]["test"][-1] == "beat"
    assert services["migrate"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_compose_database_volume_and_endpoints():
    document = compose()
    postgres = document["services"]["postgres"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in document["volumes"]
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${FLARE_DB_PASSWORD:?")
    environment = document["services"]["web"]["environment"]
    assert environment["FLARE_DB_HOST"] == "postgres"
    for key in ("FLARE_REDIS_URL", "FLARE_CELERY_BROKER_URL", "FLARE_CACHE_URL", "FLARE_CHANNELS_URL"):
        assert environment[key].startswith("redis://redis:6379/"), key
    assert "flare.env" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()


def test_env_example_documents_every_setting():
    text = (DEPLOY / "flare.env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?(FLARE_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    missing = settings_variables() - TEST_ONLY_SETTINGS - documented
    assert not missing, f"document these in deploy/flare.env.example: {sorted(missing)}"
    assert documented <= settings_variables() | CONTAINER_SETTINGS
    # Placeholders, never a usable secret.
    values = dict(re.findall(r"^(FLARE_[A-Z0-9_]+)=(.*)$", text, flags=re.MULTILINE))
    assert "CHANGE-ME" in values["FLARE_SECRET_KEY"] and "CHANGE-ME" in values["FLARE_DB_PASSWORD"]


# --- Dockerfile and entrypoint ------------------------------------------------------------------------


def test_dockerfile_base_user_entrypoint_and_healthcheck():
    instructions = parse_dockerfile()
    keywords = [keyword for keyword, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert keywords.count("FROM") == 1
    user = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert user and user[-1].split(":")[0] not in {"root", "0"}
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in {"RUN", "COPY"})
    entrypoint = exec_form(dict(instructions)["ENTRYPOINT"])
    assert entrypoint == ["/app/deploy/entrypoint.sh"]
    assert exec_form(dict(instructions)["CMD"]) == ["web"]
    healthcheck = dict(instructions)["HEALTHCHECK"]
    assert "/app/deploy/healthcheck.py" in healthcheck
    assert "EXPOSE" in keywords and dict(instructions)["EXPOSE"] == "8000"
    workdir = dict(instructions)["WORKDIR"]
    assert workdir == "/app"


def test_dockerfile_installs_requirements_and_collects_static_files():
    instructions = parse_dockerfile()
    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert "pip install --no-cache-dir -r /app/requirements.txt" in runs
    assert re.search(r"FLARE_MANIFEST_STATIC=true python /app/manage.py collectstatic --noinput", runs)
    env = " ".join(arguments for keyword, arguments in instructions if keyword == "ENV")
    assert "FLARE_MANIFEST_STATIC=true" in env, "the runtime must use the manifest the build wrote"
    # requirements.txt is copied and installed before the code, for layer caching.
    copies = [i for i, (keyword, _) in enumerate(instructions) if keyword == "COPY"]
    install = next(i for i, (keyword, arguments) in enumerate(instructions)
                   if keyword == "RUN" and "pip install" in arguments)
    assert instructions[copies[0]][1].startswith("requirements.txt")
    assert copies[0] < install < copies[1]


def test_dockerfile_copy_sources_exist():
    for source in copy_sources():
        assert (ROOT / source).exists(), f"COPY source {source} does not exist"


def test_dockerfile_copies_everything_the_runtime_imports():
    copied = {source.rstrip("/") for source in copy_sources()}
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests"}
    needed = packages | {"manage.py", "templates", "static", "deploy/crds", "deploy/entrypoint.sh",
                         "deploy/migrate.py", "deploy/healthcheck.py"}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"


def test_dockerignore_keeps_the_copied_paths():
    patterns = [line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for source in copy_sources():
        for pattern in patterns:
            assert not fnmatch.fnmatch(source, pattern) and not source.startswith(pattern.rstrip("/") + "/"), \
                (source, pattern)
    assert ".venv" in patterns and ".git" in patterns


def test_entrypoint_is_executable_bash_and_has_every_role():
    assert os.access(ENTRYPOINT, os.X_OK)
    subprocess.run(["bash", "-n", str(ENTRYPOINT)], check=True)
    assert entrypoint_roles() == ROLES
    text = ENTRYPOINT.read_text(encoding="utf-8")
    assert "exec daphne -b 0.0.0.0 -p \"${FLARE_PORT:-8000}\" \"$@\" flare_portal.asgi:application" in text
    assert "exec celery -A flare_portal worker" in text and '-Q "${FLARE_CELERY_QUEUE:-flare}"' in text
    assert "exec celery -A flare_portal beat" in text
    migrate_steps = (DEPLOY / "migrate.py").read_text(encoding="utf-8")
    assert '["migrate_schemas", "--shared", "--noinput"]' in migrate_steps
    assert migrate_steps.index('"--shared"') < migrate_steps.index('["migrate_schemas", "--noinput"]')


def test_entrypoint_roles_map_to_real_commands():
    # web: the ASGI application module; worker/beat: the Celery app module, and both programs.
    assert importlib.util.find_spec("flare_portal.asgi") is not None
    assert importlib.util.find_spec("flare_portal.celery") is not None
    binaries = Path(sys.executable).parent
    for program in ("daphne", "celery"):
        assert (binaries / program).exists() or shutil.which(program), program
    # migrate, wait-migrations, seed: the management commands and the options used.
    migrate_help = manage("help", "migrate_schemas")
    assert migrate_help.returncode == 0, migrate_help.stderr
    for option in ("--shared", "--check", "--noinput"):
        assert option in migrate_help.stdout
    seed_help = manage("help", "seed_federation")
    assert seed_help.returncode == 0 and "--no-progress" in seed_help.stdout, seed_help.stderr
    # The Celery app the worker, beat and health check load.
    loaded = subprocess.run(
        [sys.executable, "-c", "from flare_portal.celery import app; print(app.main)"],
        cwd=ROOT, env=script_env(), capture_output=True, text=True, timeout=60)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "flare", loaded.stderr


def test_entrypoint_refuses_a_missing_or_placeholder_secret_key():
    placeholder = documents(SECRET_TEMPLATE)[0]["stringData"]["FLARE_SECRET_KEY"]
    for key, message in ((None, "not set"), (placeholder, "placeholder"), ("x" * 20, "at least 50")):
        env = script_env(FLARE_DEBUG="false")
        env.pop("FLARE_SECRET_KEY", None)
        if key is not None:
            env["FLARE_SECRET_KEY"] = key
        for role in ("web", "worker", "beat"):
            result = subprocess.run([str(ENTRYPOINT), role], env=env, capture_output=True, text=True, timeout=30)
            assert result.returncode == 1 and message in result.stderr, (role, key, result.stderr)


def stage_image(root: Path) -> Path:
    """The image's /app, built from the Dockerfile's COPY instructions (minus __pycache__)."""
    for keyword, arguments in parse_dockerfile():
        if keyword not in {"COPY", "ADD"}:
            continue
        words = [word for word in shlex.split(arguments) if not word.startswith("--")]
        *sources, destination = words
        assert destination.startswith("/app"), destination
        target = root / destination.lstrip("/")
        for source in sources:
            path = ROOT / source
            into = target / path.name if destination.endswith("/") else target
            into.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                shutil.copytree(path, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(path, into)
    return root / "app"


def test_image_tree_runs_the_build_steps_and_loads_every_entry_point(tmp_path):
    """Only what the Dockerfile copies: Django's checks pass, the ASGI and Celery apps import, and
    the build's collectstatic (manifest storage) succeeds, as `docker build` would run it."""
    app = stage_image(tmp_path)
    env = script_env(FLARE_MANIFEST_STATIC="true")
    env.pop("PYTHONPATH", None)
    check = subprocess.run([sys.executable, "manage.py", "check"], cwd=app, env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    imports = subprocess.run(
        [sys.executable, "-c",
         "import flare_portal.asgi, flare_portal.celery, flare_portal.crds as crds, sys; "
         "assert flare_portal.asgi.__file__.startswith(sys.argv[1]), flare_portal.asgi.__file__; "
         "assert crds.load_crds(), 'no CRDs in the image'", str(app)],
        cwd=app, env=env, capture_output=True, text=True, timeout=120)
    assert imports.returncode == 0, imports.stderr
    collect = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                             cwd=app, env=env, capture_output=True, text=True, timeout=300)
    assert collect.returncode == 0, collect.stderr
    manifest = json.loads((app / "var" / "staticfiles" / "staticfiles.json").read_text(encoding="utf-8"))
    assert any(path.startswith("portal/") for path in manifest["paths"])
    assert os.access(app / "deploy" / "entrypoint.sh", os.X_OK)


# --- the roles against PostgreSQL and Redis -----------------------------------------------------------


@pytest.fixture
def scratch_database():
    """A fresh, empty database for the migrate role; dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"flare_deploy_{os.getpid()}"
    params = {"host": os.environ.get("FLARE_DB_HOST", "127.0.0.1"),
              "port": int(os.environ.get("FLARE_DB_PORT", "5432")),
              "user": os.environ.get("FLARE_DB_USER", "postgres"),
              "password": os.environ.get("FLARE_DB_PASSWORD") or None, "dbname": "postgres"}
    with psycopg.connect(autocommit=True, **params) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(autocommit=True, **params) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_role(role: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(ENTRYPOINT), role], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_migrate_role_is_idempotent_and_wait_migrations_follows_it(scratch_database):
    env = script_env(FLARE_DB_NAME=scratch_database, FLARE_MIGRATION_WAIT_SECONDS="1",
                     FLARE_MIGRATION_WAIT_INTERVAL="1")
    before = run_role("wait-migrations", env)
    assert before.returncode == 1 and "migrations still pending" in before.stderr, before.stderr
    first = run_role("migrate", env)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "Applying tenants.0001_initial... OK" in first.stdout
    second = run_role("migrate", env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Applying" not in second.stdout and "No migrations to apply" in second.stdout
    after = run_role("wait-migrations", env)
    assert after.returncode == 0 and "up to date" in after.stderr, after.stderr


def test_web_role_serves_the_probes(scratch_database):
    port = free_port()
    secret = "deploy-test-" + "k" * 50
    env = script_env(FLARE_DB_NAME=scratch_database, FLARE_PORT=str(port), FLARE_SECRET_KEY=secret,
                     FLARE_DEBUG="false", FLARE_ALLOWED_HOSTS="localhost")
    # As on Kubernetes, web starts on a migrated schema (every request resolves the tenant).
    migrated = run_role("migrate", env)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    process = subprocess.Popen([str(ENTRYPOINT), "web"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)

    def get(path: str, host: str) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status = get("/healthz", PROBE_HOST)
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "daphne did not start"
                time.sleep(0.25)
        assert status == 200
        assert get("/readyz", PROBE_HOST) == 200
        # What the kubelet would send without the Host header: refused, hence the header.
        assert get("/healthz", f"10.0.0.1:{port}") == 400
        check = subprocess.run([sys.executable, str(DEPLOY / "healthcheck.py"), "web"], env=env,
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0 and "healthy" in check.stdout, check.stdout + check.stderr
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
