"""The desired-vs-resting diff: only the difference is cancelled or created, within tolerances."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from live.reconcile import DesiredOrder, RestingOrder, diff_orders

P = "BTC/USDT"


def d(slot, side, price, amount=1.0):
    return DesiredOrder(P, side, price, amount, slot)


def r(cid, slot, side, price, remaining=1.0):
    return RestingOrder(cid, P, side, price, remaining, slot)


def test_identical_books_do_nothing():
    plan = diff_orders([d(0, "buy", 99.0), d(1, "sell", 101.0)], [r("a", 0, "buy", 99.0), r("b", 1, "sell", 101.0)], 0, 0)
    assert plan.empty and len(plan.keep) == 2


def test_tolerance_keeps_close_orders_and_replaces_far_ones():
    desired = [d(0, "buy", 99.0, 1.0), d(1, "buy", 98.0, 1.0)]
    resting = [r("a", 0, "buy", 99.04, 1.005), r("b", 1, "buy", 97.5, 1.0)]
    plan = diff_orders(desired, resting, price_tol_pct=0.05, amount_tol_pct=1.0)
    assert [k[0].client_id for k in plan.keep] == ["a"]
    assert [c.client_id for c in plan.cancel] == ["b"]
    assert plan.create == [desired[1]]


def test_zero_tolerance_is_exact():
    plan = diff_orders([d(0, "buy", 99.0)], [r("a", 0, "buy", 99.0000001)], 0, 0)
    assert [c.client_id for c in plan.cancel] == ["a"] and len(plan.create) == 1


def test_side_mismatch_and_surplus_resting_are_cancelled():
    plan = diff_orders([d(0, "sell", 101.0)], [r("a", 0, "buy", 101.0), r("b", 5, "buy", 90.0)], 0, 0)
    assert {c.client_id for c in plan.cancel} == {"a", "b"} and len(plan.create) == 1


def test_renumbered_slot_at_same_price_is_kept():
    plan = diff_orders([d(7, "buy", 95.0)], [r("a", 2, "buy", 95.0)], 0, 0)
    assert plan.empty and plan.keep[0][1].slot == 7


def test_partially_filled_order_compares_its_remaining_amount():
    plan = diff_orders([d(0, "buy", 99.0, 0.6)], [r("a", 0, "buy", 99.0, remaining=0.6)], 0, 0)
    assert plan.empty


orders = st.lists(
    st.tuples(st.integers(0, 6), st.sampled_from(["buy", "sell"]), st.integers(90, 110), st.integers(1, 3)),
    max_size=8,
)


@given(orders, orders)
def test_after_the_plan_the_book_equals_the_desired_set(want, have):
    desired = [d(s, side, float(p), float(a)) for s, side, p, a in want]
    resting = [r(f"c{i}", s, side, float(p), float(a)) for i, (s, side, p, a) in enumerate(have)]
    plan = diff_orders(desired, resting, 0, 0)
    cancelled = {c.client_id for c in plan.cancel}
    kept = [k for k in plan.keep]
    # every resting order is either kept or cancelled, never both
    assert len(kept) + len(cancelled) == len(resting)
    assert not cancelled & {k[0].client_id for k in kept}
    after = sorted([(k[0].side, k[0].price, k[0].remaining) for k in kept]
                   + [(c.side, c.price, c.amount) for c in plan.create])
    assert after == sorted((o.side, o.price, o.amount) for o in desired)
    # nothing is touched that did not need to be: kept orders each equal a desired order exactly
    assert all((k[0].side, k[0].price, k[0].remaining) == (k[1].side, k[1].price, k[1].amount) for k in kept)


def test_market_orders_are_always_sent_never_matched():
    m = DesiredOrder(P, "sell", 100.0, 1.0, 9, "exit", market=True)
    plan = diff_orders([m], [r("a", 9, "sell", 100.0)], 0, 0)
    assert plan.create == [m] and [c.client_id for c in plan.cancel] == ["a"]
