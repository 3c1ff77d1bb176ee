"""The federation port (ARCHITECTURE.md): one interface, two backends.

Every call is idempotent and returns an observation; "still running" (`done=False`) is a
normal answer. The state machine (intents.lifecycle), not the backend, decides what happens
next. Backends raise the typed errors below and never touch intents or the ledger.

`IntentRef` carries everything a backend needs about an intent as plain data, so a backend
never imports intents models: it is built by the lifecycle from the Intent row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from providers.traits import Offer


class FederationError(Exception):
    """Base of the typed backend errors. `reason` is a CamelCase condition reason."""

    reason = "FederationError"

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason


class Conflict(FederationError):
    """The candidate was taken (PeeringCandidate not available, GPUs booked elsewhere)."""

    reason = "Conflict"


class Unavailable(FederationError):
    """Transient: API unreachable, provider outage, 5xx/429 after retries."""

    reason = "Unavailable"


class Timeout(FederationError):
    """A FLUIDOS/Liqo object did not reach its goal within FLARE's own timeout."""

    reason = "Timeout"


class Failed(FederationError):
    """Terminal failure of the current attempt (Discovery Failed, Allocation Error, workload crash)."""

    reason = "Failed"


@dataclass(frozen=True)
class IntentRef:
    schema: str                 # tenant schema
    tenant: str                 # tenant slug
    intent_id: str
    user: str
    attempt: int                # 1-based; a retry gets a fresh Solver
    document: dict              # the normalised intent document
    solver_manifest: dict       # from intents.solver (what GET /intents/{id}/solver shows)

    @property
    def workload_name(self) -> str:
        return self.document["workload"]["name"]

    @property
    def namespace(self) -> str:
        from intents.workload import namespace_name

        return namespace_name(self.tenant, self.workload_name)


@dataclass
class Discovery:
    done: bool
    candidates: list[Offer] = field(default_factory=list)
    phase: str = ""             # FLUIDOS Solver/Discovery phase
    message: str = ""


@dataclass
class Reservation:
    done: bool
    name: str = ""              # Reservation object name
    contract: str = ""          # Contract name once Solved
    flavor: str = ""
    provider: str = ""
    node: str = ""
    gpus: int = 0
    remote_cluster_id: str = ""     # Contract.peeringTargetCredentials.liqoID
    phase: str = ""
    message: str = ""


@dataclass
class Peering:
    done: bool
    allocation: str = ""
    remote_cluster_id: str = ""
    virtual_node: str = ""
    phase: str = ""             # Allocation status: Inactive|Peering|Active|Error
    message: str = ""


@dataclass
class Deployment:
    done: bool
    namespace: str = ""
    objects: list[str] = field(default_factory=list)   # "Kind/name" applied
    phase: str = ""             # NamespaceOffloading phase, then workload apply
    message: str = ""


@dataclass
class Observation:
    state: str                  # pending | running | succeeded | failed
    message: str = ""
    reason: str = ""
    workload_url: str = ""
    gpu_utilization: float | None = None   # 0–1
    ready_replicas: int = 0
    completed_tasks: int = 0


class Federation(Protocol):
    name: str

    def discover(self, intent: IntentRef) -> Discovery: ...

    def reserve(self, intent: IntentRef, candidate: Offer, gpus: int) -> Reservation: ...

    def peer(self, intent: IntentRef, reservation: Reservation) -> Peering: ...

    def deploy(self, intent: IntentRef, peerings: list[Peering], manifests: list[dict]) -> Deployment: ...

    def observe(self, intent: IntentRef) -> Observation: ...

    def release(self, intent: IntentRef) -> None: ...

    def inventory(self) -> list[Offer]: ...
