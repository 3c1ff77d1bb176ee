"""The six intent examples of the published FLARE API reference, as request bodies.

Source: "Complete Examples" of docs/FLARE_API_Reference.md in github.com/clastix/flare (the
revision whose schema matches API.md: `memory_min`, `batch`, `Energy_Efficiency`). They are
reproduced as published, including the spellings API.md accepts as aliases (`"job": {...}`,
`"max_network_latency": "50ms"`), and the deadlines of the two cost-optimised batch examples
(December 2024), which lie in the past: validate those with an earlier `now`.
"""

from __future__ import annotations

import json
from pathlib import Path

_DIR = Path(__file__).resolve().parent

# In the order of the published reference.
EXAMPLES = [
    "llm_inference",                  # 1. LLM Inference Service (High Performance)
    "video_batch",                    # 2. Video Processing Batch Job (Cost Optimized)
    "distributed_training",           # 3. ML Training Job (Distributed)
    "spark_etl",                      # 4. Data Processing Pipeline (Spark)
    "jupyter_service",                # 5. Interactive Jupyter Notebook Service
    "communication_aware_training",   # 6. Communication-Aware Distributed Training
]


def load_example(name: str) -> dict:
    """A fresh copy of one example request body (`{"intent": {...}}`)."""
    if name not in EXAMPLES:
        raise KeyError(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}")
    return json.loads((_DIR / f"{name}.json").read_text(encoding="utf-8"))
