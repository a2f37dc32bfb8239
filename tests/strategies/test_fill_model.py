"""The fill model against a slow, obvious oracle that walks the path in tiny steps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.fill_model import fill_time, intrabar_path


def _oracle(is_buy, price, o, h, l, c, touch):  # noqa: E741
    if is_buy and not (l < price or (touch and l <= price)):
        return None
    if not is_buy and not (h > price or (touch and h >= price)):
        return None
    pts = [o, l, h, c] if c >= o else [o, h, l, c]
    for k in range(3):
        a, b = pts[k], pts[k + 1]
        lo, hi = min(a, b), max(a, b)
        if (is_buy and a <= price) or (not is_buy and a >= price):
            return float(k)
        if lo <= price <= hi:
            return k + abs(price - a) / abs(b - a)
    raise AssertionError("bar check passed but the path never reached the price")


bars = st.tuples(
    st.floats(10, 20), st.floats(10, 20), st.floats(10, 20), st.floats(10, 20)
).map(lambda t: (t[0], max(t), min(t), t[3]))


@settings(max_examples=300, deadline=None)
@given(bar=bars, price=st.floats(9, 21), is_buy=st.booleans(), touch=st.booleans())
def test_fill_time_matches_oracle(bar, price, is_buy, touch):
    o, h, l, c = bar  # noqa: E741
    got = fill_time(is_buy, price, o, h, l, c, touch)
    want = _oracle(is_buy, price, o, h, l, c, touch)
    if want is None:
        assert got == -1.0
    else:
        assert abs(got - want) < 1e-9


def test_up_bar_visits_low_first_and_strict_vs_touch():
    assert intrabar_path(10, 12, 9, 11) == (10, 9, 12, 11)
    assert intrabar_path(11, 12, 9, 10) == (11, 12, 9, 10)
    # a buy exactly at the low fills only with touch-fills
    assert fill_time(True, 9.0, 10, 12, 9, 11, False) == -1.0
    assert fill_time(True, 9.0, 10, 12, 9, 11, True) == 1.0
    # on a down bar the sell near the high fills before the buy near the low
    assert fill_time(False, 11.5, 11, 12, 9, 10, False) < fill_time(True, 9.5, 11, 12, 9, 10, False)
