"""Fixtures of the Kubernetes API emulator suite (defined in tests/k8s/fixtures.py)."""

import pytest

from .fixtures import _kube_emulator_server, fluidos, kube_api_client, kube_emulator  # noqa: F401


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/k8s/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.k8s)
