"""FLUIDOS object names (FLUIDOS.md §1), shared by both backends: one rule, one place."""

from __future__ import annotations

import hashlib


def h4(name: str) -> str:
    """First 4 hex digits of sha256(name): the suffix FLUIDOS gives Contracts and Allocations."""
    return hashlib.sha256(name.encode()).hexdigest()[:4]


def contract_name(flavor: str) -> str:
    return f"contract-{flavor}-{h4(flavor)}".replace(".", "-")


def allocation_name(flavor: str) -> str:
    return f"allocation-{flavor}-{h4(flavor)}"


def peering_candidate_name(flavor: str) -> str:
    return f"peeringcandidate-{flavor}"


def discovery_name(solver: str) -> str:
    return f"discovery-{solver}"


def reservation_name(solver: str, position: int = 1) -> str:
    """`reservation-<solver>`; the further nodes of a gang get `-2`, `-3`, … in order."""
    return f"reservation-{solver}" if position <= 1 else f"reservation-{solver}-{position}"
