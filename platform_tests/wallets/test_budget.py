"""The daily DeBank units budget: its state file, daily reset, call price and shared use."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from platform_pkg.wallets.budget import BudgetExhausted, UnitsBudget, next_reset

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
RESET = datetime(2026, 11, 25, tzinfo=UTC)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state" / "debank-units.json"


def test_spending_is_recorded_per_utc_day_and_resets_at_midnight(path):
    budget = UnitsBudget(path, per_day=None)
    budget.spend(NOW, 15, calls=3)
    budget.spend(NOW + timedelta(hours=13), 5)  # 23:30 UTC: the same day
    assert budget.spent_today(NOW) == 20
    assert json.loads(path.read_text()) == {"day": "2026-11-24", "spent": 20.0, "per_call": 5.0}
    assert budget.spent_today(RESET) == 0
    # The new day starts from nothing but keeps what a call costs.
    assert json.loads(path.read_text()) == {"day": "2026-11-25", "spent": 0.0, "per_call": 5.0}


def test_the_price_of_a_call_is_the_most_one_has_cost(path):
    budget = UnitsBudget(path, per_day=100)
    budget.spend(NOW, 5, calls=1)
    budget.spend(NOW, 30, calls=2)  # 15 a call
    budget.spend(NOW, 3, calls=1)
    budget.spend(NOW, 0, calls=0)  # nothing happened: nothing changes
    assert json.loads(path.read_text())["per_call"] == 15
    assert budget.spent_today(NOW) == 38


def test_check_passes_while_the_next_call_fits_and_raises_with_the_reset_time(path):
    budget = UnitsBudget(path, per_day=20)
    budget.spend(NOW, 5)
    budget.check(NOW)
    budget.spend(NOW, 10, calls=2)
    budget.check(NOW)  # 15 spent + 5 = 20: exactly the budget still fits
    budget.spend(NOW, 1, calls=0)
    with pytest.raises(BudgetExhausted) as raised:
        budget.check(NOW)
    assert raised.value.until == RESET == next_reset(NOW)
    message = str(raised.value)
    assert "PLATFORM_DEBANK_UNITS_BUDGET" in message
    assert "20 units a day" in message and "16 used today" in message
    assert "a call costs 5" in message
    assert "resets at 2026-11-25 00:00 UTC" in message
    assert raised.value.reason == message
    budget.check(RESET)  # the next UTC day


def test_next_reset_is_the_next_utc_midnight():
    assert next_reset(datetime(2026, 11, 24, 0, 0, tzinfo=UTC)) == RESET
    assert next_reset(datetime(2026, 11, 24, 23, 59, 59, tzinfo=UTC)) == RESET
    assert next_reset(datetime(2026, 12, 31, 12, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)


def test_without_a_cap_check_never_raises_and_spending_is_still_recorded(path):
    budget = UnitsBudget(path, per_day=None)
    budget.spend(NOW, 1e9, calls=1)
    budget.check(NOW)
    assert budget.spent_today(NOW) == 1e9


def test_a_budget_of_zero_allows_no_call_even_before_a_price_is_known(path):
    budget = UnitsBudget(path, per_day=0)
    with pytest.raises(BudgetExhausted):
        budget.check(NOW)


def test_a_spent_budget_stops_calls_even_before_a_price_is_known(path):
    budget = UnitsBudget(path, per_day=10)
    budget.spend(NOW, 10, calls=0)  # measured without counting calls (a wallet's total)
    with pytest.raises(BudgetExhausted):
        budget.check(NOW)


def test_two_budgets_on_one_file_share_the_day(path):
    first, second = UnitsBudget(path, per_day=12), UnitsBudget(path, per_day=12)
    first.spend(NOW, 5)
    second.spend(NOW, 5)
    assert first.spent_today(NOW) == second.spent_today(NOW) == 10
    with pytest.raises(BudgetExhausted):
        first.check(NOW)
    with pytest.raises(BudgetExhausted):
        second.check(NOW)


def test_concurrent_spending_adds_up_exactly(path):
    budgets = [UnitsBudget(path, per_day=None) for _ in range(8)]

    def spend(budget):
        for _ in range(25):
            budget.spend(NOW, 1)

    threads = [threading.Thread(target=spend, args=(b,)) for b in budgets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budgets[0].spent_today(NOW) == 8 * 25


def test_a_state_file_left_from_yesterday_starts_the_day_afresh(path):
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"day": "2026-11-23", "spent": 999.0, "per_call": 4.0}))
    budget = UnitsBudget(path, per_day=10)
    budget.check(NOW)  # yesterday's spending does not count today
    assert budget.spent_today(NOW) == 0
