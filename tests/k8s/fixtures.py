"""pytest fixtures for the Kubernetes API emulator and the fake FLUIDOS controllers.

tests/k8s/conftest.py imports them; elsewhere, add `pytest_plugins = ["tests.k8s.fixtures"]` to the
root conftest.py (pytest only honours `pytest_plugins` there).

* `kube_emulator`: the session's KubeEmulator (one HTTP server for the whole run), reset to an
  empty cluster (default namespaces only) before each test.
* `kube_api_client`: a `kubernetes.client.ApiClient` built from the emulator's kubeconfig.
* `fluidos`: FluidosControllers installed on the emulator with `default_catalogue()`; step-driven
  (`fluidos.step()`, `fluidos.run_until_idle()`), or `fluidos.start()` for a background loop
  (stopped at teardown).
"""

from __future__ import annotations

import pytest

from .emulator import KubeEmulator
from .fluidos_controllers import FluidosControllers, make_flavor

H100 = {"model": "nvidia-h100", "vendor": "nvidia", "count": 4, "memory": "320Gi", "cores": "67584",
        "clock_speed": "1.98G", "network_bandwidth": "100", "interconnect_bandwidth": "900",
        "tier": "premium", "architecture": "hopper", "compute_capability": "9.0", "interconnect": "nvlink",
        "topology": "all-to-all", "multi_gpu_efficiency": "0.95", "fp32_tflops": 67.0, "hourly_rate": 4.5,
        "training_score": 0.95, "inference_score": 0.9, "hpc_score": 0.95, "graphics_score": 0.3,
        "provider": "provider-a", "region": "zone-a", "zone": "eu-west-1", "network_tier": "premium",
        "network_latency_ms": 5, "dedicated": True, "multi_instance": True, "shared": False,
        "interruptible": False, "pre_emptible": False, "sharing_strategy": "mig"}
A6000 = {"model": "nvidia-rtx-a6000", "vendor": "nvidia", "count": 2, "memory": "96Gi", "cores": "21504",
         "clock_speed": "1.8G", "network_bandwidth": "25", "interconnect_bandwidth": "0",
         "tier": "standard", "architecture": "ampere", "compute_capability": "8.6", "fp32_tflops": 38.7,
         "hourly_rate": 1.1, "training_score": 0.6, "inference_score": 0.7, "graphics_score": 0.9,
         "provider": "provider-b", "region": "zone-1", "zone": "us-east-1", "network_latency_ms": 40,
         "interruptible": True, "pre_emptible": True, "shared": True, "sharing_strategy": "time-slicing"}


def default_catalogue() -> list[dict]:
    """Two providers, one GPU node each, written by hand after FLUIDOS.md §1 (region/zone stored
    swapped as the cluster does, §4)."""
    return [
        make_flavor("provider-a.fluidos.eu-k8slice-7f3a", domain="provider-a.fluidos.eu",
                    node_id="provider-a-node-1", liqo_id="provider-a-cluster", ip="10.1.0.10:30000",
                    cpu="64", memory="512Gi", pods="110", gpu=H100),
        make_flavor("provider-b.fluidos.eu-k8slice-c41e", domain="provider-b.fluidos.eu",
                    node_id="provider-b-node-1", liqo_id="provider-b-cluster", ip="10.2.0.10:30000",
                    cpu="32", memory="128Gi", pods="110", gpu=A6000),
    ]


@pytest.fixture(scope="session")
def _kube_emulator_server():
    emu = KubeEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def kube_emulator(_kube_emulator_server):
    _kube_emulator_server.reset()
    yield _kube_emulator_server
    _kube_emulator_server.clear_faults()


@pytest.fixture
def kube_api_client(kube_emulator):
    client = kube_emulator.api_client()
    yield client
    client.close()


@pytest.fixture
def fluidos(kube_emulator):
    controllers = FluidosControllers(kube_emulator, default_catalogue()).install()
    yield controllers
    controllers.stop()
