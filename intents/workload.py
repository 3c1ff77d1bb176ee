"""Intent → the Kubernetes objects that run it on the cluster FLARE bought (FLUIDOS.md §6 steps 8, 9, 11).

Pure functions over the normalised intent document (what `intents.schema` produces): no ORM, no
HTTP. The Kubernetes backend applies the list in order; the simulator stores it; both delete with
`release_order`.

Decisions worth knowing before changing anything here:

- **One namespace per intent**, `flare-<tenant>-<workload>`, owned by the Capsule Tenant
  `flare-<tenant>` (Capsule's `forceTenantPrefix` holds because the prefix is never truncated). A
  name longer than 63 characters keeps the prefix, cuts the workload part and appends 8 hex digits of
  sha256(workload name), so two long names never share a namespace.
- **Garbage collection**: an ownerReference cannot cross namespaces and a namespaced owner's uid is
  unknown until it exists, so namespaced children carry no ownerReferences; they are collected with
  their Namespace, which is owned by the Tenant (when its uid is given). Release still deletes them
  one by one (`release_order`) so GPUs are freed before the namespace finalises.
- **NamespaceOffloading** `offloading` selects exactly the remote clusters FLARE bought
  (`liqo.io/remote-cluster-id In [...]`, pods `Remote` only). With no ids it selects *no* cluster
  (`DoesNotExist` on a label every virtual node has): FLARE never offloads onto capacity it did not
  buy, and Liqo reports `NoClusterSelected` instead of guessing.
- **Virtual-node taint**: Liqo taints virtual nodes `virtual-node.liqo.io/not-allowed:NoExecute` so
  that only pods meant for offloading land there. Liqo's webhook adds the toleration in offloaded
  namespaces; the pod template carries it explicitly as well so the manifest is correct on its own
  (simulator, dry runs, a webhook outage). The required node affinity to the bought clusters is
  likewise explicit; Liqo does not copy node affinity to the remote pod, so it only constrains the
  consumer-side scheduler.
- **Commands** run as one `/bin/sh -c` script: `set -e`, then one command line per line. That is the
  `cmd1 && cmd2` contract (stop at the first failing line) without its traps: a line such as
  `a || b` keeps its meaning, a trailing comment or `&` cannot swallow the next line.
- **Env**: `KEY=value` splits on the first `=` (the value keeps the rest); a repeated key keeps its
  last value; a variable also named in `secrets` comes from the Secret.
- **Secrets** are never created by FLARE: `secrets: [{name, env}]` becomes
  `env[].valueFrom.secretKeyRef {name: <name>, key: <env>}` — the Secret's key is the variable's
  name as written (`kubectl create secret generic hf-token --from-literal=HF_TOKEN=…`).
- **GPUs**: `limits[<vendor>.com/gpu] = resources.gpu.count` (per replica / per task). `gpu_vendor`
  is the vendor of the Flavor actually bought, so it wins over the document. GPU pods also get a
  memory-backed `/dev/shm` (half the memory request): the container default of 64 MiB breaks NCCL
  and PyTorch data loaders.
- **CPU / memory**: requests for both, a memory limit equal to the request, no CPU limit (CFS
  throttling only slows a GPU job down).
- **Storage**: `persistent` → a ReadWriteOnce PVC of `size` (with `storage_class`; on Liqo, the
  virtual class `liqo` provisions it on the provider); `temporary` → `emptyDir.sizeLimit = size`. A
  volume with a `source` is filled before the workload starts by an rclone init container
  (`rclone copy`, incremental, so restarts are cheap); `source.credentials` names a user Secret
  loaded with `envFrom` (AWS_*/RCLONE_S3_*, RCLONE_GCS_SERVICE_ACCOUNT_CREDENTIALS, AZURE_STORAGE_*
  or RCLONE_AZUREBLOB_*). Every scheme `intents.schema` accepts is understood (s3://; gs://,
  gcs://; az://, https://<account>.blob|dfs…, abfs(s)://, wasb(s)://). A ReadWriteOnce claim is
  shared by all replicas/tasks of the workload: that only works while they land on one node.
- **Service** workloads: a Deployment with `replicas = min_replicas` and a rollout that never
  surges (`maxSurge: 0`), because a surge pod would need GPUs nobody reserved. HPA (autoscaling/v2,
  CPU utilisation) only with `auto_scale`; `target_gpu_percent` is recorded as an annotation, not a
  metric: GPU utilisation is not in the resource-metrics API, and a metric HPA cannot read blocks
  every scale-down.
- **Batch** workloads: an Indexed Job (`JOB_COMPLETION_INDEX` tells each task its shard) with
  `parallelism = completions = parallel_tasks`. `All` needs every index to succeed; `Any` adds a
  success policy `succeededCount: 1`, which ends the Job (and stops the other tasks) at the first
  success. (`completions: 1` would not do: Kubernetes caps running pods at the completions left, so
  only one task would ever run.) `backoffLimit = max_retries` is the Job-wide retry budget;
  disruptions (preemption, eviction) do not spend it. `activeDeadlineSeconds = timeout`;
  `ttlSecondsAfterFinished` is a day, so the lifecycle can read the outcome before the Job goes.
- **Ports**: one ClusterIP Service named after the workload, ports named `<proto>-<port>`. An Ingress
  (`networking.k8s.io/v1`, path `/` Prefix, TLS for the host with the controller's certificate)
  for each TCP port with `expose: true` and a `domain`; the first port per domain wins.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

import yaml

from flare_portal.units import parse_bytes, parse_duration, parse_quantity

LABEL_INTENT = "flare.io/intent-id"
LABEL_TENANT = "flare.io/tenant"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_CAPSULE_TENANT = "capsule.clastix.io/tenant"
MANAGED_BY = "flare"

CAPSULE_API_VERSION = "capsule.clastix.io/v1beta2"
OFFLOADING_API_VERSION = "offloading.liqo.io/v1beta1"
OFFLOADING_NAME = "offloading"  # Liqo's webhook accepts no other name
LIQO_REMOTE_CLUSTER_ID = "liqo.io/remote-cluster-id"
LIQO_VIRTUAL_NODE_TAINT = "virtual-node.liqo.io/not-allowed"

GPU_RESOURCE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
JOB_TTL_SECONDS = 24 * 3600
DATA_SYNC_IMAGE = "docker.io/rclone/rclone:1.69"
SHM_VOLUME = "flare-shm"

# Deletion order of FLUIDOS.md §6.11; apply order is the reverse of the dependencies.
_RELEASE_RANK = {
    "Deployment": 0,
    "Job": 0,
    "HorizontalPodAutoscaler": 1,
    "Ingress": 2,
    "Service": 3,
    "Secret": 4,
    "PersistentVolumeClaim": 5,
    # 6: any other namespaced object
    "NamespaceOffloading": 7,
    "Namespace": 8,
    # 9: any other cluster-scoped object
}

_MAX_NAME = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_PROTOCOLS = ("TCP", "UDP")


# ---------------------------------------------------------------------------------------------
# Names


def capsule_tenant_name(tenant: str) -> str:
    """The Capsule Tenant of a FLARE tenant: `flare-<tenant>` (DNS-1123, lower-cased, `_` → `-`)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", str(tenant).lower()).strip("-")
    if not slug:
        raise ValueError(f"tenant {tenant!r} has no characters usable in a Kubernetes name")
    name = f"flare-{slug}"
    # The namespace must still fit the prefix plus an 8-hex disambiguator.
    if len(name) + 1 + 8 > _MAX_NAME:
        raise ValueError(f"tenant {tenant!r} is too long for a namespace prefix ({len(name)} characters)")
    return name


def namespace_name(tenant: str, workload_name: str) -> str:
    """`flare-<tenant>-<workload>`, at most 63 characters; the tenant prefix is never cut."""
    prefix = capsule_tenant_name(tenant) + "-"
    _require_dns_label(workload_name, "workload.name")
    full = prefix + workload_name
    if len(full) <= _MAX_NAME:
        return full
    digest = hashlib.sha256(workload_name.encode()).hexdigest()[:8]
    room = max(_MAX_NAME - len(prefix) - len(digest) - 1, 0)
    head = workload_name[:room].rstrip("-")
    return f"{prefix}{head}-{digest}" if head else prefix + digest


def _object_name(workload_name: str) -> str:
    """Deployment/Job/Service/Ingress/HPA name. Services need a DNS-1035 label (leading letter)."""
    return workload_name if workload_name[0].isalpha() else f"w-{workload_name}"[:_MAX_NAME].rstrip("-")


def _job_name(name: str, completions: int) -> str:
    # Indexed Job pods get the hostname `<job>-<index>`, which must stay a 63-character label.
    room = _MAX_NAME - 1 - len(str(max(completions - 1, 0)))
    return name[:room].rstrip("-")


def _require_dns_label(value, what: str) -> None:
    if not isinstance(value, str) or len(value) > _MAX_NAME or not _DNS_LABEL.match(value):
        raise ValueError(f"{what} must be a DNS-1123 label (lower-case letters, digits, '-'), got {value!r}")


def _require_label_value(value, what: str) -> None:
    if not isinstance(value, str) or not value or len(value) > _MAX_NAME or not _LABEL_VALUE.match(value):
        raise ValueError(f"{what} must be a Kubernetes label value, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Small readers of the document


def _quantity(value, what: str) -> str:
    try:
        parse_quantity(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    return value.strip() if isinstance(value, str) else str(value)


def _int(value, default: int) -> int:
    if value is None or isinstance(value, bool):
        return default
    return int(value)


def _ports(workload: dict) -> list[dict]:
    """Ports with defaults applied; one entry per (port, protocol)."""
    seen, ports = set(), []
    for raw in workload.get("ports") or ():
        port = int(raw["port"])
        protocol = str(raw.get("protocol") or "TCP").upper()
        if protocol not in _PROTOCOLS:
            raise ValueError(f"port {port}: protocol must be TCP or UDP, got {protocol!r}")
        if (port, protocol) in seen:
            continue
        seen.add((port, protocol))
        domain = str(raw.get("domain") or "").strip()
        if "://" in domain:
            domain = urlsplit(domain).hostname or ""
        ports.append(
            {
                "port": port,
                "protocol": protocol,
                "name": f"{protocol.lower()}-{port}",
                "expose": bool(raw.get("expose", False)),
                "domain": domain.rstrip("/").rstrip(".").lower(),
            }
        )
    return ports


def _ingress_ports(ports: list[dict]) -> list[dict]:
    """TCP ports exposed on a domain, first one per domain (an Ingress speaks HTTP over TCP)."""
    chosen: dict[str, dict] = {}
    for port in ports:
        if port["expose"] and port["domain"] and port["protocol"] == "TCP":
            chosen.setdefault(port["domain"], port)
    return list(chosen.values())


def _env(workload: dict) -> list[dict]:
    values: dict[str, str] = {}
    for item in workload.get("env") or ():
        if isinstance(item, dict):
            key, value = str(item["name"]), str(item.get("value", ""))
        else:
            key, _, value = str(item).partition("=")
        key = key.strip()
        if not key:
            raise ValueError(f"env entry {item!r} has no variable name")
        values.pop(key, None)  # a repeated key keeps its last value, in its last position
        values[key] = value
    secret_refs = []
    for secret in workload.get("secrets") or ():
        env_name = str(secret["env"])
        values.pop(env_name, None)
        secret_refs.append(
            {"name": env_name, "valueFrom": {"secretKeyRef": {"name": str(secret["name"]), "key": env_name}}}
        )
    return [{"name": key, "value": value} for key, value in values.items()] + secret_refs


def _shell_command(commands) -> list[str] | None:
    if isinstance(commands, str):
        commands = [commands]
    lines = [str(line) for line in commands or () if str(line).strip()]
    if not lines:
        return None
    return ["/bin/sh", "-c", "set -e\n" + "\n".join(lines)]


def _gpu_count(resources: dict) -> int:
    gpu = resources.get("gpu")
    if gpu is None or gpu is False:
        return 0
    if isinstance(gpu, dict):
        return max(_int(gpu.get("count"), 1), 0)
    return max(_int(gpu, 0), 0)


# ---------------------------------------------------------------------------------------------
# Object builders


def _labels(ctx: dict, extra: dict | None = None) -> dict:
    labels = {
        LABEL_INTENT: ctx["intent_id"],
        LABEL_TENANT: ctx["tenant"],
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_NAME: ctx["workload"],
    }
    if extra:
        labels.update(extra)
    return labels


def _meta(ctx: dict, name: str, *, namespaced: bool = True, labels: dict | None = None, annotations=None) -> dict:
    meta = {"name": name}
    if namespaced:
        meta["namespace"] = ctx["namespace"]
    meta["labels"] = _labels(ctx, labels)
    if annotations:
        meta["annotations"] = annotations
    return meta


def _namespace(ctx: dict, capsule_tenant_uid: str) -> dict:
    meta = _meta(ctx, ctx["namespace"], namespaced=False, labels={LABEL_CAPSULE_TENANT: ctx["capsule_tenant"]})
    if capsule_tenant_uid:
        # No blockOwnerDeletion: setting it needs `delete` on the Tenant, which FLARE does not hold.
        meta["ownerReferences"] = [
            {
                "apiVersion": CAPSULE_API_VERSION,
                "kind": "Tenant",
                "name": ctx["capsule_tenant"],
                "uid": capsule_tenant_uid,
                "controller": True,
            }
        ]
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _cluster_requirement(cluster_ids: list[str]) -> dict:
    if cluster_ids:
        return {"key": LIQO_REMOTE_CLUSTER_ID, "operator": "In", "values": list(cluster_ids)}
    return {"key": LIQO_REMOTE_CLUSTER_ID, "operator": "DoesNotExist"}


def _namespace_offloading(ctx: dict, cluster_ids: list[str]) -> dict:
    return {
        "apiVersion": OFFLOADING_API_VERSION,
        "kind": "NamespaceOffloading",
        "metadata": _meta(ctx, OFFLOADING_NAME),
        "spec": {
            "namespaceMappingStrategy": "DefaultName",
            "podOffloadingStrategy": "Remote",
            "clusterSelector": {"nodeSelectorTerms": [{"matchExpressions": [_cluster_requirement(cluster_ids)]}]},
        },
    }


def _rclone_remote(source: dict, volume_name: str) -> str:
    """An rclone on-the-fly remote (`:backend,opt=v:bucket/path`) for an s3/gcs/azure URI."""
    kind = str(source.get("type") or "").lower()
    uri = str(source.get("uri") or "").strip()
    if not uri:
        raise ValueError(f"storage volume {volume_name!r}: source.uri is required")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if kind == "s3":
        if scheme not in ("", "s3", "s3a"):
            raise ValueError(f"storage volume {volume_name!r}: an s3 source needs an s3:// URI, got {uri!r}")
        return ":s3,env_auth=true:" + (parts.netloc + parts.path if scheme else uri)
    if kind == "gcs":
        if scheme not in ("", "gs", "gcs"):
            raise ValueError(f"storage volume {volume_name!r}: a gcs source needs a gs:// URI, got {uri!r}")
        return ":gcs,env_auth=true:" + (parts.netloc + parts.path if scheme else uri)
    if kind == "azure":
        return _azure_remote(parts, uri, volume_name)
    raise ValueError(f"storage volume {volume_name!r}: source.type must be s3, gcs or azure, got {kind!r}")


def _azure_remote(parts, uri: str, volume_name: str) -> str:
    """az://<container>/<path> (account from the credentials), https://<account>.blob|dfs.<host>/<container>/<path>,
    abfs[s]|wasb[s]://<container>@<account>.<host>/<path>."""
    scheme = parts.scheme.lower()
    options = ["env_auth=true"]
    if scheme in ("", "az", "azure", "azureblob"):
        target = parts.netloc + parts.path if scheme else uri
    elif scheme in ("https", "http", "abfs", "abfss", "wasb", "wasbs"):
        host = (parts.hostname or "").lower()
        if scheme.startswith("http"):
            container_path = parts.path.lstrip("/")
        else:
            container = parts.username or ""
            container_path = container + "/" + parts.path.lstrip("/") if container else ""
        account = host.split(".", 1)[0]
        if not account or not container_path.strip("/"):
            raise ValueError(f"storage volume {volume_name!r}: cannot read account and container from {uri!r}")
        options.append(f"account={account}")
        service_host = host.replace(".dfs.", ".blob.", 1)  # rclone speaks the Blob API to ADLS Gen2 too
        if not service_host.endswith(".blob.core.windows.net"):
            options.append(f"endpoint='https://{service_host}'")  # sovereign clouds, Azurite
        target = container_path
    else:
        raise ValueError(
            f"storage volume {volume_name!r}: an azure source needs az://, https://, abfs(s):// or "
            f"wasb(s)://, got {uri!r}"
        )
    return f":azureblob,{','.join(options)}:{target}"


def _storage(ctx: dict, workload: dict, storage_class: str | None):
    """→ (PVC manifests, pod volumes, volume mounts, init containers)."""
    pvcs, volumes, mounts, init_containers = [], [], [], []
    storage = workload.get("storage") or {}
    for raw in storage.get("volumes") or ():
        name = raw.get("name")
        _require_dns_label(name, "storage volume name")
        path = raw.get("path")
        if not path or not str(path).startswith("/"):
            raise ValueError(f"storage volume {name!r}: path must be an absolute path, got {path!r}")
        kind = str(raw.get("type") or "persistent").lower()
        size = raw.get("size")
        if kind == "persistent":
            if size in (None, ""):
                raise ValueError(f"storage volume {name!r}: a persistent volume needs a size")
            spec = {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": _quantity(size, f"storage volume {name!r} size")}},
            }
            if storage_class:
                spec["storageClassName"] = storage_class
            pvcs.append(
                {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _meta(ctx, name), "spec": spec}
            )
            volumes.append({"name": name, "persistentVolumeClaim": {"claimName": name}})
        elif kind == "temporary":
            empty_dir = {}
            if size not in (None, ""):
                empty_dir["sizeLimit"] = _quantity(size, f"storage volume {name!r} size")
            volumes.append({"name": name, "emptyDir": empty_dir})
        else:
            raise ValueError(f"storage volume {name!r}: type must be persistent or temporary, got {kind!r}")
        mount = {"name": name, "mountPath": str(path)}
        mounts.append(mount)
        source = raw.get("source")
        if source:
            sync = {
                "name": f"sync-{name}"[:_MAX_NAME].rstrip("-"),
                "image": DATA_SYNC_IMAGE,
                "command": ["rclone", "copy", _rclone_remote(source, name), str(path)],
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                "volumeMounts": [dict(mount)],
            }
            if source.get("credentials"):
                sync["envFrom"] = [{"secretRef": {"name": str(source["credentials"])}}]
            init_containers.append(sync)
    return pvcs, volumes, mounts, init_containers


def _pod_template(ctx: dict, workload: dict, volumes, mounts, init_containers, *, restart_policy: str) -> dict:
    resources = workload.get("resources") or {}
    requests, limits = {}, {}
    if resources.get("cpu") not in (None, ""):
        requests["cpu"] = _quantity(resources["cpu"], "resources.cpu")
    if resources.get("memory") not in (None, ""):
        requests["memory"] = limits["memory"] = _quantity(resources["memory"], "resources.memory")
    gpus = _gpu_count(resources)
    if gpus:
        limits[ctx["gpu_resource"]] = str(gpus)

    volumes, mounts = list(volumes), list(mounts)
    if gpus and "memory" in requests and all(m["mountPath"].rstrip("/") != "/dev/shm" for m in mounts):
        if all(v["name"] != SHM_VOLUME for v in volumes):
            shm_mib = max(parse_bytes(requests["memory"]) // 2 // (1 << 20), 64)
            shm = f"{shm_mib // 1024}Gi" if shm_mib % 1024 == 0 else f"{shm_mib}Mi"
            volumes.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": shm}})
            mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})

    container = {"name": ctx["workload"], "image": str(workload["image"])}
    command = _shell_command(workload.get("commands"))
    if command:
        container["command"] = command
    ports = _ports(workload)
    if ports:
        container["ports"] = [
            {"name": p["name"], "containerPort": p["port"], "protocol": p["protocol"]} for p in ports
        ]
    env = _env(workload)
    if env:
        container["env"] = env
    container_resources = {}
    if requests:
        container_resources["requests"] = requests
    if limits:
        container_resources["limits"] = limits
    if container_resources:
        container["resources"] = container_resources
    if mounts:
        container["volumeMounts"] = mounts

    spec = {}
    if init_containers:
        spec["initContainers"] = init_containers
    spec["containers"] = [container]
    if volumes:
        spec["volumes"] = volumes
    spec["restartPolicy"] = restart_policy
    # The workload never talks to the consumer's API server; Liqo forces this off remotely anyway.
    spec["automountServiceAccountToken"] = False
    spec["enableServiceLinks"] = False
    spec["tolerations"] = [{"key": LIQO_VIRTUAL_NODE_TAINT, "operator": "Exists", "effect": "NoExecute"}]
    if ctx["cluster_ids"]:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [_cluster_requirement(ctx["cluster_ids"])]}]
                }
            }
        }
    return {"metadata": {"labels": _labels(ctx)}, "spec": spec}


def _selector(ctx: dict) -> dict:
    return {LABEL_INTENT: ctx["intent_id"], LABEL_NAME: ctx["workload"]}


def _deployment(ctx: dict, scaling: dict, template: dict) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(ctx, ctx["object_name"]),
        "spec": {
            "replicas": max(_int(scaling.get("min_replicas"), 1), 1),
            "selector": {"matchLabels": _selector(ctx)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": template,
        },
    }


def _job(ctx: dict, batch: dict, template: dict) -> dict:
    tasks = max(_int(batch.get("parallel_tasks"), 1), 1)
    policy = str(batch.get("completion_policy") or "All").capitalize()
    if policy not in ("All", "Any"):
        raise ValueError(f"batch.completion_policy must be All or Any, got {batch.get('completion_policy')!r}")
    spec = {
        "parallelism": tasks,
        "completions": tasks,
        "completionMode": "Indexed",
        "backoffLimit": max(_int(batch.get("max_retries"), 3), 0),
        "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
        "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
    }
    if policy == "Any" and tasks > 1:
        spec["successPolicy"] = {"rules": [{"succeededCount": 1}]}
    if batch.get("timeout"):
        spec["activeDeadlineSeconds"] = parse_duration(batch["timeout"])
    spec["template"] = template
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(ctx, _job_name(ctx["object_name"], tasks)),
        "spec": spec,
    }


def _hpa(ctx: dict, scaling: dict) -> dict:
    minimum = max(_int(scaling.get("min_replicas"), 1), 1)
    maximum = max(_int(scaling.get("max_replicas"), 10), minimum)
    annotations = {}
    if scaling.get("target_gpu_percent") is not None:
        annotations["flare.io/target-gpu-percent"] = str(_int(scaling["target_gpu_percent"], 80))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(ctx, ctx["object_name"], annotations=annotations),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": ctx["object_name"]},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": max(_int(scaling.get("target_cpu_percent"), 70), 1),
                        },
                    },
                }
            ],
        },
    }


def _service(ctx: dict, ports: list[dict]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(ctx, ctx["object_name"]),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(ctx),
            "ports": [
                {"name": p["name"], "protocol": p["protocol"], "port": p["port"], "targetPort": p["port"]}
                for p in ports
            ],
        },
    }


def _ingress(ctx: dict, ports: list[dict]) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(ctx, ctx["object_name"]),
        "spec": {
            # No secretName: the ingress controller serves its default (or cert-manager's) certificate.
            "tls": [{"hosts": [p["domain"] for p in ports]}],
            "rules": [
                {
                    "host": p["domain"],
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": ctx["object_name"], "port": {"number": p["port"]}}},
                            }
                        ]
                    },
                }
                for p in ports
            ],
        },
    }


# ---------------------------------------------------------------------------------------------
# Public API


def workload_manifests(
    doc: dict,
    *,
    intent_id: str,
    tenant: str,
    gpu_vendor: str = "nvidia",
    remote_cluster_ids: list[str] = (),
    capsule_tenant_uid: str = "",
    storage_class: str | None = None,
) -> list[dict]:
    """Every object FLARE applies for one intent, in apply order.

    Namespace, NamespaceOffloading, PersistentVolumeClaims, Service, Deployment or Job,
    HorizontalPodAutoscaler, Ingress. Raises `ValueError` for a document no cluster would accept.
    """
    workload = doc.get("workload") or {}
    name = workload.get("name")
    _require_dns_label(name, "workload.name")
    if not workload.get("image"):
        raise ValueError("workload.image is required")
    _require_label_value(intent_id, "intent_id")
    _require_label_value(tenant, "tenant")
    vendor = str(gpu_vendor or "").lower()
    if vendor not in GPU_RESOURCE:
        raise ValueError(f"gpu_vendor must be one of {sorted(GPU_RESOURCE)}, got {gpu_vendor!r}")
    kind = str(workload.get("type") or "service").lower()
    if kind == "job":
        kind = "batch"
    if kind not in ("service", "batch"):
        raise ValueError(f"workload.type must be service or batch, got {workload.get('type')!r}")

    cluster_ids = list(dict.fromkeys(str(c) for c in remote_cluster_ids or () if c))
    ctx = {
        "intent_id": intent_id,
        "tenant": tenant,
        "workload": name,
        "object_name": _object_name(name),
        "namespace": namespace_name(tenant, name),
        "capsule_tenant": capsule_tenant_name(tenant),
        "gpu_resource": GPU_RESOURCE[vendor],
        "cluster_ids": cluster_ids,
    }

    pvcs, volumes, mounts, init_containers = _storage(ctx, workload, storage_class)
    ports = _ports(workload)
    manifests = [_namespace(ctx, capsule_tenant_uid), _namespace_offloading(ctx, cluster_ids), *pvcs]
    if ports:
        manifests.append(_service(ctx, ports))
    if kind == "service":
        scaling = workload.get("scaling") or {}
        template = _pod_template(ctx, workload, volumes, mounts, init_containers, restart_policy="Always")
        manifests.append(_deployment(ctx, scaling, template))
        if scaling.get("auto_scale"):
            manifests.append(_hpa(ctx, scaling))
    else:
        template = _pod_template(ctx, workload, volumes, mounts, init_containers, restart_policy="Never")
        manifests.append(_job(ctx, workload.get("batch") or {}, template))
    exposed = _ingress_ports(ports)
    if exposed:
        manifests.append(_ingress(ctx, exposed))
    return manifests


def release_order(manifests: list[dict]) -> list[dict]:
    """The same objects in deletion order (FLUIDOS.md §6.11).

    Workloads (Deployment/Job) → HPA → Ingress → Service → Secrets → PVCs → NamespaceOffloading →
    Namespace. Objects of one kind come out in reverse apply order. Delete Jobs and Deployments with
    `propagationPolicy=Foreground` (or Background): batch/v1 Jobs otherwise orphan their pods, and
    those pods hold the GPUs.
    """

    def rank(item):
        index, manifest = item
        kind = manifest.get("kind", "")
        if kind in _RELEASE_RANK:
            return (_RELEASE_RANK[kind], -index)
        namespaced = bool((manifest.get("metadata") or {}).get("namespace"))
        return (6 if namespaced else 9, -index)

    return [manifest for _, manifest in sorted(enumerate(manifests), key=rank)]


def workload_url(doc: dict, namespace: str) -> str:
    """`https://<domain>` of the first exposed TCP port with a domain, else the in-cluster URL of the
    first TCP port (`http://<service>.<namespace>.svc.cluster.local:<port>`), else ""."""
    workload = doc.get("workload") or {}
    ports = _ports(workload)
    exposed = _ingress_ports(ports)
    if exposed:
        return f"https://{exposed[0]['domain']}"
    name = workload.get("name")
    for port in ports:
        if port["protocol"] == "TCP" and name:
            return f"http://{_object_name(name)}.{namespace}.svc.cluster.local:{port['port']}"
    return ""


class _ManifestDumper(yaml.SafeDumper):
    """Shell scripts as `|` blocks, so `kubectl`-style review reads them line by line."""


def _represent_str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None  # the emitter falls back when a block cannot hold the text
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _represent_str)


def manifests_yaml(manifests: list[dict]) -> str:
    """Multi-document YAML (`---` before each object), keys in the order built."""
    return yaml.dump_all(
        manifests,
        Dumper=_ManifestDumper,
        sort_keys=False,
        explicit_start=True,
        default_flow_style=False,
        # Escaped, not raw: PyYAML would write U+0085/U+2028 raw and read them back as line breaks.
        allow_unicode=False,
        width=1000,
    )
