"""The GPU ledger: all-or-nothing holds, row locks, no double booking, honest cost accrual."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from providers import ledger
from providers.models import GpuReservation


def hold(node, gpus, price="2.00"):
    return ledger.Hold(node_id=node.pk, gpus=gpus, price_per_gpu_hour=Decimal(price))


@pytest.mark.django_db
def test_reserve_is_all_or_nothing(make_node):
    a = make_node(count=4)
    b = make_node(count=2)
    ledger.reserve("t_acme", "intent-one", [hold(b, 2)])
    with pytest.raises(ledger.LedgerConflict) as conflict:
        ledger.reserve("t_acme", "intent-two", [hold(a, 4), hold(b, 1)])
    assert "0 free GPUs" in conflict.value.message
    assert not GpuReservation.objects.filter(intent_id="intent-two").exists()
    assert ledger.free_by_node([a, b]) == {a.pk: 4, b.pk: 0}


@pytest.mark.django_db
def test_reserve_is_idempotent_and_release_frees(make_node):
    node = make_node(count=8)
    first = ledger.reserve("t_acme", "intent-x", [hold(node, 3)])
    again = ledger.reserve("t_acme", "intent-x", [hold(node, 3)])
    assert [r.pk for r in first] == [r.pk for r in again]
    assert ledger.free_by_node([node])[node.pk] == 5
    assert ledger.release("t_acme", "intent-x", reason="done") == 3
    assert ledger.release("t_acme", "intent-x") == 0
    assert ledger.free_by_node([node])[node.pk] == 8


@pytest.mark.django_db
def test_unavailable_node_cannot_be_reserved(make_node):
    node = make_node(count=8, available=False)
    with pytest.raises(ledger.LedgerConflict):
        ledger.reserve("t_acme", "intent-y", [hold(node, 1)])


@pytest.mark.django_db
def test_cost_accrues_from_activation_at_the_agreed_price(make_node):
    node = make_node(count=8)
    ledger.reserve("t_acme", "intent-c", [hold(node, 2, "3.00")])
    assert ledger.accrued_cost("t_acme", "intent-c")[0] == 0  # held, not yet bought
    start = timezone.now() - timedelta(hours=2)
    ledger.activate("t_acme", "intent-c", when=start)
    cost, currency = ledger.accrued_cost("t_acme", "intent-c", now=start + timedelta(minutes=90))
    assert cost == Decimal("9.0000") and currency == "EUR"   # 1.5 h × 3.00 × 2 GPUs
    ledger.release("t_acme", "intent-c", when=start + timedelta(hours=1))
    assert ledger.accrued_cost("t_acme", "intent-c", now=start + timedelta(hours=5))[0] == Decimal("6.0000")


@pytest.mark.django_db
def test_tenant_usage_counts_live_holds_only(make_node):
    node = make_node(count=8)
    ledger.reserve("t_acme", "intent-u1", [hold(node, 2, "1.50")])
    ledger.reserve("t_acme", "intent-u2", [hold(node, 1, "1.50")])
    ledger.reserve("t_globex", "intent-u3", [hold(node, 4, "1.50")])
    ledger.release("t_acme", "intent-u2")
    usage = ledger.tenant_usage("t_acme")
    assert usage == {"gpus": 2, "hourly_spend": Decimal("3.0000")}


@pytest.mark.django_db(transaction=True)
def test_racing_reservers_never_double_book(make_node):
    """Twelve threads (own connections, real row locks) race for 5 GPUs on one node."""
    node = make_node(count=5)
    results: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def worker(index: int):
        try:
            barrier.wait()
            schema = "t_acme" if index % 2 else "t_globex"
            ledger.reserve(schema, f"intent-race{index:02d}", [hold(node, 1)])
            outcome = "ok"
        except ledger.LedgerConflict:
            outcome = "conflict"
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 5 and results.count("conflict") == 7
    assert ledger.invariant_violations() == []
    assert ledger.free_by_node([node])[node.pk] == 0
