"""The routing ledger: a commit is pending until a route that began after it has ended."""

from __future__ import annotations

from service.runtime.quiescence import RoutingLedger


def test_a_batch_committed_while_its_home_is_routed_stays_pending():
    ledger = RoutingLedger()
    ledger.committed({"h1", "h2"})
    taken = ledger.routing({"h1", "h2"})
    ledger.committed({"h1"})  # the intake commits another batch of h1 during the route
    ledger.routed(taken)
    assert ledger.pending()
    ledger.routed(ledger.routing({"h1"}))
    assert not ledger.pending()


def test_a_route_of_homes_with_nothing_committed_changes_nothing():
    ledger = RoutingLedger()
    ledger.routed(ledger.routing({"h1"}))
    assert not ledger.pending()
    ledger.committed({"h2"})
    ledger.routed(ledger.routing({"h1"}))
    assert ledger.pending()
