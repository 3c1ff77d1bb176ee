"""The federation port and the process-wide backend (ARCHITECTURE.md, "The federation port").

`get_federation()` returns one backend per process, chosen by `settings.FLARE_FEDERATION`:
`simulated` (the embedded default, state in the database so every process sees one federation) or
`kubernetes` (FLUIDOS + Liqo custom resources on a real cluster). `reset_federation()` drops the
instance so the next call rebuilds it from the current settings (tests change settings per test).
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from .base import (
    Conflict,
    Deployment,
    Discovery,
    Failed,
    Federation,
    FederationError,
    IntentRef,
    Observation,
    Peering,
    Reservation,
    Timeout,
    Unavailable,
)

BACKENDS = ("simulated", "kubernetes")

_instance: Federation | None = None
_lock = threading.Lock()


def _build() -> Federation:
    backend = str(getattr(settings, "FLARE_FEDERATION", "simulated") or "simulated").strip().lower()
    if backend == "simulated":
        from .simulated import SimulatedFederation

        return SimulatedFederation(
            step_delay=settings.FLARE_SIM_STEP_DELAY,
            fault_rate=settings.FLARE_SIM_FAULT_RATE,
            seed=settings.FLARE_SIM_SEED,
            batch_seconds=settings.FLARE_SIM_BATCH_SECONDS,
        )
    if backend == "kubernetes":
        try:
            from .kubernetes import KubernetesFederation
        except ImportError as exc:
            raise ImproperlyConfigured(
                "FLARE_FEDERATION=kubernetes, but the Kubernetes backend cannot be imported "
                f"(providers.federation.kubernetes.KubernetesFederation): {exc}. Install the `kubernetes` "
                "client or set FLARE_FEDERATION=simulated."
            ) from exc
        factory = getattr(KubernetesFederation, "from_settings", None)
        return factory() if callable(factory) else KubernetesFederation()
    raise ImproperlyConfigured(
        f"FLARE_FEDERATION must be one of {', '.join(BACKENDS)}; got {backend!r}."
    )


def get_federation() -> Federation:
    """The backend of this process (built on first use from settings)."""
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = _build()
    return _instance


def reset_federation() -> None:
    """Forget the backend instance; the next `get_federation()` builds a new one (tests)."""
    global _instance
    with _lock:
        _instance = None


def _settings_changed(setting: str, **kwargs) -> None:
    if setting == "FLARE_FEDERATION" or setting.startswith(("FLARE_SIM_", "FLARE_KUBE")):
        reset_federation()


setting_changed.connect(_settings_changed, dispatch_uid="flare-federation-settings")


__all__ = [
    "BACKENDS", "Conflict", "Deployment", "Discovery", "Failed", "Federation", "FederationError", "IntentRef",
    "Observation", "Peering", "Reservation", "Timeout", "Unavailable", "get_federation", "reset_federation",
]
