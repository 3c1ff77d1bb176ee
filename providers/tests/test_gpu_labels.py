import json

import pytest
import yaml

from providers.annotations import parse_annotations
from providers.gpu_catalog import CATALOG, GIB, lookup
from providers.gpu_labels import labels_to_annotations, parse_label_text

# What NVIDIA GPU Feature Discovery (GPU operator) puts on real nodes, with the node's other labels.
COMMON = {
    "beta.kubernetes.io/arch": "amd64",
    "kubernetes.io/hostname": "gpu-node-1",
    "kubernetes.io/os": "linux",
    "node-role.fluidos.eu/resources": "true",
    "feature.node.kubernetes.io/pci-10de.present": "true",
}
A100_40GB = {
    **COMMON,
    "nvidia.com/cuda.driver.major": "535",
    "nvidia.com/cuda.driver.minor": "104",
    "nvidia.com/cuda.runtime.major": "12",
    "nvidia.com/cuda.runtime.minor": "2",
    "nvidia.com/gfd.timestamp": "1717000000",
    "nvidia.com/gpu.compute.major": "8",
    "nvidia.com/gpu.compute.minor": "0",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.deploy.device-plugin": "true",
    "nvidia.com/gpu.family": "ampere",
    "nvidia.com/gpu.machine": "DGX-A100",
    "nvidia.com/gpu.memory": "40960",
    "nvidia.com/gpu.present": "true",
    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
    "nvidia.com/gpu.replicas": "1",
    "nvidia.com/gpu.sharing-strategy": "none",
    "nvidia.com/mig.capable": "true",
    "nvidia.com/mig.strategy": "single",
}
RTX_A6000 = {
    **COMMON,
    "nvidia.com/gpu.compute.major": "8",
    "nvidia.com/gpu.compute.minor": "6",
    "nvidia.com/gpu.count": "4",
    "nvidia.com/gpu.family": "ampere",
    "nvidia.com/gpu.machine": "ESC4000A-E10",
    "nvidia.com/gpu.memory": "49140",
    "nvidia.com/gpu.product": "NVIDIA-RTX-A6000",
    "nvidia.com/mig.capable": "false",
}
H100 = {
    **COMMON,
    "nvidia.com/gpu.compute.major": "9",
    "nvidia.com/gpu.compute.minor": "0",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.family": "hopper",
    "nvidia.com/gpu.machine": "PowerEdge-XE9680",
    "nvidia.com/gpu.memory": "81559",
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    "nvidia.com/mig.capable": "true",
}
T4 = {
    **COMMON,
    "nvidia.com/gpu.compute.major": "7",
    "nvidia.com/gpu.compute.minor": "5",
    "nvidia.com/gpu.count": "1",
    "nvidia.com/gpu.family": "turing",
    "nvidia.com/gpu.machine": "g4dn.xlarge",
    "nvidia.com/gpu.memory": "15360",
    "nvidia.com/gpu.product": "Tesla-T4",
    "nvidia.com/mig.capable": "false",
}
MI300X = {
    **COMMON,
    "amd.com/gpu.product": "AMD-Instinct-MI300X",
    "amd.com/gpu.memory": "192000",
    "amd.com/gpu.count": "8",
    "amd.com/gpu.family": "cdna3",
    "amd.com/sriov.capable": "true",
}
# AMD's own node labeller: product-name, vram, cu-count, and a two-letter ASIC family.
MI300X_LABELLER = {
    **COMMON,
    "amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM",
    "amd.com/gpu.vram": "192G",
    "amd.com/gpu.cu-count": "304",
    "amd.com/gpu.simd-count": "1216",
    "amd.com/gpu.device-id": "74a1",
    "amd.com/gpu.family": "AI",
    "amd.com/gpu.count": "8",
}
RX_7900_XTX = {
    **COMMON,
    "amd.com/gpu.product": "AMD-Radeon-RX-7900-XTX",
    "amd.com/gpu.memory": "24000",
    "amd.com/gpu.count": "2",
    "amd.com/gpu.family": "rdna3",
}


def _catalogue(model_id, memory_gi):
    model = lookup(model_id, memory_gi * GIB)
    return {
        "gpu.fluidos.eu/tier": model.tier,
        "gpu.fluidos.eu/cores": str(model.cores),
        "gpu.fluidos.eu/fp32-tflops": str(model.fp32_tflops),
        "gpu.fluidos.eu/interconnect": model.interconnect,
        "gpu.fluidos.eu/interconnect-bandwidth-gbps": str(int(model.interconnect_bandwidth_gbps)),
        "workload.fluidos.eu/training-score": str(model.training_score),
        "workload.fluidos.eu/inference-score": str(model.inference_score),
        "workload.fluidos.eu/hpc-score": str(model.hpc_score),
        "workload.fluidos.eu/graphics-score": str(model.graphics_score),
    }


@pytest.mark.parametrize(
    "labels, expected",
    [
        (A100_40GB, {
            "gpu.fluidos.eu/vendor": "nvidia", "gpu.fluidos.eu/model": "nvidia-a100", "gpu.fluidos.eu/count": "8",
            "gpu.fluidos.eu/memory-per-gpu": "40Gi", "gpu.fluidos.eu/architecture": "ampere",
            "gpu.fluidos.eu/compute-capability": "8.0", "nvidia.fluidos.eu/mig-capable": "true",
            **_catalogue("nvidia-a100", 40),
        }),
        (RTX_A6000, {
            "gpu.fluidos.eu/vendor": "nvidia", "gpu.fluidos.eu/model": "nvidia-rtx-a6000",
            "gpu.fluidos.eu/count": "4", "gpu.fluidos.eu/memory-per-gpu": "48Gi",
            "gpu.fluidos.eu/architecture": "ampere", "gpu.fluidos.eu/compute-capability": "8.6",
            "nvidia.fluidos.eu/mig-capable": "false", **_catalogue("nvidia-rtx-a6000", 48),
        }),
        (H100, {
            "gpu.fluidos.eu/vendor": "nvidia", "gpu.fluidos.eu/model": "nvidia-h100", "gpu.fluidos.eu/count": "8",
            "gpu.fluidos.eu/memory-per-gpu": "80Gi", "gpu.fluidos.eu/architecture": "hopper",
            "gpu.fluidos.eu/compute-capability": "9.0", "nvidia.fluidos.eu/mig-capable": "true",
            **_catalogue("nvidia-h100", 80),
        }),
        (T4, {
            "gpu.fluidos.eu/vendor": "nvidia", "gpu.fluidos.eu/model": "nvidia-t4", "gpu.fluidos.eu/count": "1",
            # 15360 MiB is what a T4 reports (16 GB minus ECC): exactly 15Gi.
            "gpu.fluidos.eu/memory-per-gpu": "15Gi", "gpu.fluidos.eu/architecture": "turing",
            "gpu.fluidos.eu/compute-capability": "7.5", "nvidia.fluidos.eu/mig-capable": "false",
            **_catalogue("nvidia-t4", 16),
        }),
        (MI300X, {
            "gpu.fluidos.eu/vendor": "amd", "gpu.fluidos.eu/model": "amd-mi300x", "gpu.fluidos.eu/count": "8",
            "gpu.fluidos.eu/memory-per-gpu": "192Gi", "gpu.fluidos.eu/architecture": "cdna3",
            "gpu.fluidos.eu/sharing-capable": "true", "gpu.fluidos.eu/sharing-strategy": "sriov",
            **_catalogue("amd-mi300x", 192),
        }),
        (RX_7900_XTX, {
            "gpu.fluidos.eu/vendor": "amd", "gpu.fluidos.eu/model": "amd-rx-7900xtx", "gpu.fluidos.eu/count": "2",
            "gpu.fluidos.eu/memory-per-gpu": "24Gi", "gpu.fluidos.eu/architecture": "rdna3",
            **_catalogue("amd-rx-7900xtx", 24),
        }),
    ],
    ids=["a100-40gb", "rtx-a6000", "h100", "t4", "mi300x", "rx-7900-xtx"],
)
def test_operator_labels_to_annotations(labels, expected):
    conversion = labels_to_annotations(labels)
    assert conversion.errors == []
    assert conversion.annotations == expected
    # The result is exactly what parse_annotations accepts.
    parsed = parse_annotations(conversion.annotations, labels)
    assert parsed.errors == []
    assert parsed.traits.model == expected["gpu.fluidos.eu/model"]


def test_sources_say_where_each_annotation_came_from():
    conversion = labels_to_annotations(A100_40GB)
    assert conversion.sources["gpu.fluidos.eu/memory-per-gpu"] == "label nvidia.com/gpu.memory"
    assert conversion.sources["gpu.fluidos.eu/model"] == "label nvidia.com/gpu.product"
    assert conversion.sources["gpu.fluidos.eu/compute-capability"] == "label nvidia.com/gpu.compute.major"
    assert conversion.sources["gpu.fluidos.eu/tier"] == "catalogue nvidia-a100"
    assert "nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB → gpu.fluidos.eu/model=nvidia-a100" in conversion.notes
    assert "nvidia.com/gpu.memory=40960 MiB → gpu.fluidos.eu/memory-per-gpu=40Gi" in conversion.notes


def test_a100_40gb_scores_are_the_40gb_variant():
    annotations = labels_to_annotations(A100_40GB).annotations
    assert annotations["workload.fluidos.eu/training-score"] == str(lookup("nvidia-a100-40gb").training_score)
    assert annotations["workload.fluidos.eu/training-score"] != str(CATALOG["nvidia-a100"].training_score)


def test_amd_labeller_keys():
    conversion = labels_to_annotations(MI300X_LABELLER)
    assert conversion.errors == []
    annotations = conversion.annotations
    assert annotations["gpu.fluidos.eu/model"] == "amd-mi300x"
    assert annotations["gpu.fluidos.eu/memory-per-gpu"] == "192Gi"
    assert annotations["gpu.fluidos.eu/cores"] == "19456"          # 304 CUs × 64
    assert conversion.sources["gpu.fluidos.eu/cores"] == "label amd.com/gpu.cu-count"
    # "AI" (Arctic Islands) is an ASIC family, not an architecture: the catalogue gives it.
    assert annotations["gpu.fluidos.eu/architecture"] == "cdna3"
    assert conversion.sources["gpu.fluidos.eu/architecture"] == "catalogue amd-mi300x"
    assert "amd.com/gpu.family=AI is not an architecture name" in conversion.notes


@pytest.mark.parametrize(
    "mib, expected",
    [("49140", "48Gi"), ("81559", "80Gi"), ("40960", "40Gi"), ("24564", "24Gi"), ("48640", "48Gi"),
     ("143771", "140Gi")],
)
def test_nvidia_memory_is_mib_rounded_to_gi(mib, expected):
    labels = {**H100, "nvidia.com/gpu.memory": mib}
    assert labels_to_annotations(labels).annotations["gpu.fluidos.eu/memory-per-gpu"] == expected


@pytest.mark.parametrize("mb, expected", [("192000", "192Gi"), ("128000", "128Gi"), ("24000", "24Gi"),
                                          ("191500", "192Gi")])
def test_amd_memory_is_mb_rounded_to_gi(mb, expected):
    labels = {**MI300X, "amd.com/gpu.memory": mb}
    assert labels_to_annotations(labels).annotations["gpu.fluidos.eu/memory-per-gpu"] == expected


def test_memory_from_the_product_name_when_the_memory_label_is_missing():
    labels = {key: value for key, value in A100_40GB.items() if key != "nvidia.com/gpu.memory"}
    conversion = labels_to_annotations(labels)
    assert conversion.annotations["gpu.fluidos.eu/memory-per-gpu"] == "40Gi"
    assert "no memory label: 40Gi per GPU from the product name" in conversion.notes


def test_memory_from_the_catalogue_as_a_last_resort():
    labels = {key: value for key, value in RTX_A6000.items() if key != "nvidia.com/gpu.memory"}
    conversion = labels_to_annotations(labels)
    assert conversion.annotations["gpu.fluidos.eu/memory-per-gpu"] == "48Gi"
    assert conversion.sources["gpu.fluidos.eu/memory-per-gpu"] == "catalogue nvidia-rtx-a6000"


def test_time_sliced_gpus_are_shared():
    labels = {**A100_40GB, "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-SHARED",
              "nvidia.com/gpu.sharing-strategy": "time-slicing", "nvidia.com/gpu.replicas": "4"}
    annotations = labels_to_annotations(labels).annotations
    assert annotations["gpu.fluidos.eu/model"] == "nvidia-a100"
    assert annotations["gpu.fluidos.eu/sharing-capable"] == "true"
    assert annotations["gpu.fluidos.eu/sharing-strategy"] == "time-slicing"


def test_compute_capability_from_major_alone():
    labels = {key: value for key, value in H100.items() if key != "nvidia.com/gpu.compute.minor"}
    assert labels_to_annotations(labels).annotations["gpu.fluidos.eu/compute-capability"] == "9.0"


def test_unknown_product_keeps_its_normalised_name():
    labels = {**COMMON, "nvidia.com/gpu.product": "NVIDIA-B200", "nvidia.com/gpu.memory": "183359",
              "nvidia.com/gpu.count": "8", "nvidia.com/gpu.family": "blackwell",
              "nvidia.com/gpu.compute.major": "10", "nvidia.com/gpu.compute.minor": "0"}
    conversion = labels_to_annotations(labels)
    assert conversion.errors == []
    assert conversion.annotations == {
        "gpu.fluidos.eu/vendor": "nvidia", "gpu.fluidos.eu/model": "nvidia-b200", "gpu.fluidos.eu/count": "8",
        "gpu.fluidos.eu/memory-per-gpu": "179Gi", "gpu.fluidos.eu/architecture": "blackwell",
        "gpu.fluidos.eu/compute-capability": "10.0",
    }
    assert any("nvidia-b200 is not in FLARE's GPU catalogue" in note for note in conversion.notes)


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"nvidia.com/gpu.memory": "80Gi"},
         "nvidia.com/gpu.memory: expected a whole number of MiB such as '81559', got '80Gi'"),
        ({"nvidia.com/gpu.count": "eight"},
         "nvidia.com/gpu.count: expected a whole number of GPUs (1 or more) such as '4', got 'eight'"),
        ({"nvidia.com/gpu.count": "0"},
         "nvidia.com/gpu.count: expected a whole number of GPUs (1 or more) such as '4', got '0'"),
        ({"nvidia.com/gpu.compute.minor": "x"}, "nvidia.com/gpu.compute.minor: expected a whole number such as '6', "
                                                "got 'x'"),
        ({"nvidia.com/mig.capable": "maybe"}, "nvidia.com/mig.capable: expected true or false, got 'maybe'"),
        ({"nvidia.com/gpu.sharing-strategy": "vgpu"},
         "nvidia.com/gpu.sharing-strategy: expected none, time-slicing or mps, got 'vgpu'"),
        ({"amd.com/gpu.product": "AMD-Instinct-MI300X"},
         "labels from both the NVIDIA and the AMD GPU operator: a Flavor describes one GPU model"),
    ],
)
def test_bad_label_values_are_reported(changes, error):
    conversion = labels_to_annotations({**H100, **changes})
    assert error in conversion.errors


def test_missing_count_is_an_error():
    labels = {key: value for key, value in H100.items() if key != "nvidia.com/gpu.count"}
    assert "nvidia.com/gpu.count: missing; the number of GPUs on the node is required" in \
        labels_to_annotations(labels).errors


def test_no_gpu_labels():
    conversion = labels_to_annotations(COMMON)
    assert conversion.annotations == {}
    assert conversion.errors == [
        "no GPU product label: expected nvidia.com/gpu.product (NVIDIA GPU Feature Discovery) or amd.com/gpu.product "
        "(AMD GPU operator)"
    ]


def test_amd_bad_memory_and_sriov():
    conversion = labels_to_annotations({**MI300X, "amd.com/gpu.memory": "192GB", "amd.com/sriov.capable": "yes"})
    assert "amd.com/gpu.memory: expected a whole number of MB such as '192000', got '192GB'" in conversion.errors
    assert "amd.com/sriov.capable: expected true or false, got 'yes'" in conversion.errors


# ---- pasted text ----------------------------------------------------------------------------------


def test_key_value_lines():
    text = "\n".join(f"{key}={value}" for key, value in H100.items())
    assert parse_label_text(text) == H100


def test_key_value_lines_with_comments_and_blank_lines():
    text = "# labels of gpu-node-1\n\nnvidia.com/gpu.count=8\n  nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3\n"
    assert parse_label_text(text) == {"nvidia.com/gpu.count": "8", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}


def test_show_labels_output():
    text = (
        "NAME         STATUS   ROLES    AGE   VERSION   LABELS\n"
        "gpu-node-1   Ready    <none>   12d   v1.29.4   "
        + ",".join(f"{key}={value}" for key, value in T4.items())
    )
    assert parse_label_text(text) == T4


def test_kubectl_describe_node_output():
    text = """Name:               gpu-node-1
Roles:              <none>
Labels:             beta.kubernetes.io/arch=amd64
                    nvidia.com/gpu.count=4
                    nvidia.com/gpu.memory=49140
                    nvidia.com/gpu.product=NVIDIA-RTX-A6000
Annotations:        node.alpha.kubernetes.io/ttl: 0
                    flare.example/odd=value-in-annotations
CreationTimestamp:  Mon, 03 Jun 2024 10:00:00 +0000
"""
    assert parse_label_text(text) == {
        "beta.kubernetes.io/arch": "amd64",
        "nvidia.com/gpu.count": "4",
        "nvidia.com/gpu.memory": "49140",
        "nvidia.com/gpu.product": "NVIDIA-RTX-A6000",
    }


def test_kubectl_get_node_json():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "gpu-node-1", "labels": MI300X},
            "status": {"capacity": {"amd.com/gpu": "8"}}}
    assert parse_label_text(json.dumps(node, indent=2)) == MI300X


def test_kubectl_get_nodes_json_list_of_one():
    nodes = {"apiVersion": "v1", "kind": "List", "items": [{"metadata": {"name": "n", "labels": RX_7900_XTX}}]}
    assert parse_label_text(json.dumps(nodes)) == RX_7900_XTX


def test_a_list_of_several_nodes_is_refused():
    nodes = {"kind": "List", "items": [{"metadata": {"labels": T4}}, {"metadata": {"labels": H100}}]}
    with pytest.raises(ValueError, match="the text holds 2 nodes; paste the labels of one node"):
        parse_label_text(json.dumps(nodes))


def test_json_mapping_of_labels():
    assert parse_label_text(json.dumps(H100)) == H100


def test_yaml_mapping_keeps_values_as_strings():
    text = "nvidia.com/gpu.count: 8\nnvidia.com/mig.capable: true\nnvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3\n"
    assert parse_label_text(text) == {
        "nvidia.com/gpu.count": "8", "nvidia.com/mig.capable": "true",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    }


def test_kubectl_get_node_yaml():
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "Node",
                           "metadata": {"name": "gpu-node-1", "labels": A100_40GB}})
    labels = parse_label_text(text)
    assert labels == A100_40GB
    assert labels_to_annotations(labels).annotations["gpu.fluidos.eu/model"] == "nvidia-a100"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "nothing to read"),
        ("   \n", "nothing to read"),
        ('{"metadata": {"labels": ', "the text looks like JSON but does not parse"),
        ("labels:\n  nvidia.com/gpu.count:\n    nested: 1\n", "nvidia.com/gpu.count: a label value is a single string"),
        ("just some words", "expected node labels"),
        ('{"metadata": {"name": "x"}}', "the node's metadata has no labels"),
        ('{"not a key!": "x"}', "is not a Kubernetes label key"),
    ],
)
def test_unreadable_text(text, message):
    with pytest.raises(ValueError, match=message):
        parse_label_text(text)


def test_annotation_values_with_spaces_and_commas_survive():
    # The provider admin pastes annotations through the same reader.
    text = (
        "provider.fluidos.eu/name=Nebula Cloud GmbH\n"
        "example.com/notes=racks 4,5 and 6\n"
        "gpu.fluidos.eu/count=8 gpu.fluidos.eu/tier=premium\n"
        "gpu.fluidos.eu/model='nvidia-h100'\n"
    )
    assert parse_label_text(text) == {
        "provider.fluidos.eu/name": "Nebula Cloud GmbH",
        "example.com/notes": "racks 4,5 and 6",
        "gpu.fluidos.eu/count": "8",
        "gpu.fluidos.eu/tier": "premium",
        "gpu.fluidos.eu/model": "nvidia-h100",
    }


def test_yaml_annotations_with_colons():
    text = "provider.fluidos.eu/name: Nebula Cloud\nexample.com/socket: unix:///run/containerd.sock\n"
    assert parse_label_text(text) == {"provider.fluidos.eu/name": "Nebula Cloud",
                                      "example.com/socket": "unix:///run/containerd.sock"}
