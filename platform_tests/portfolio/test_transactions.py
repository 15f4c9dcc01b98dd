"""Portfolio file validation: every bad line reported with line, field and reason; good lines kept."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from platform_pkg.market.demo import DEMO_LISTINGS
from platform_pkg.portfolio.transactions import PortfolioFormatError, parse_portfolio

HEADER = "date,account,symbol,asset_class,side,quantity,price,currency,fee\n"
NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def demo_only(symbol: str) -> str | None:
    return None if symbol in DEMO_LISTINGS else "the demo market does not list it"


def parse(*lines: str, header: str = HEADER):
    return parse_portfolio(
        header + "".join(f"{line}\n" for line in lines), known_symbol=demo_only, now=NOW
    )


def only_reject(result):
    assert len(result.rejects) == 1, result.rejects
    return result.rejects[0]


def test_a_valid_file_gives_every_transaction():
    result = parse(
        "2026-01-05,broker,AAPL,stock,buy,10,180.5,USD,1",
        "2026-02-01T15:30:00Z,broker,AAPL,stock,sell,4,190,usd,",
        "2026-03-01T10:00:00+02:00,wallet,btc/usdt,crypto,transfer_in,0.5,,USDT,0",
    )
    assert result.rejects == []
    assert result.data_lines == 3
    first, sell, transfer = result.transactions
    assert (first.line, first.symbol, first.quantity, first.fee) == (
        2,
        "AAPL",
        Decimal(10),
        Decimal(1),
    )
    assert sell.executed_at == datetime(2026, 2, 1, 15, 30, tzinfo=UTC)
    assert (sell.currency, sell.fee) == ("USD", Decimal(0))
    assert transfer.symbol == "BTC-USDT"
    assert transfer.executed_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert transfer.price is None


def test_unknown_symbol_is_rejected_with_its_line_and_the_good_lines_are_kept():
    result = parse(
        "2026-01-05,broker,AAPL,stock,buy,10,180,USD,1",
        "2026-01-06,broker,DOGE-USDT,crypto,buy,10,0.1,USDT,0",
    )
    reject = only_reject(result)
    assert (reject.line, reject.field) == (3, "symbol")
    assert "unknown symbol 'DOGE-USDT'" in reject.reason
    assert reject.raw == "2026-01-06,broker,DOGE-USDT,crypto,buy,10,0.1,USDT,0"
    assert [t.symbol for t in result.transactions] == ["AAPL"]


def test_a_symbol_key_dagster_cannot_hold_is_rejected():
    reject = only_reject(parse('2026-01-06,broker,"BTC|USDT",crypto,buy,1,1,USDT,0'))
    assert reject.field == "symbol"
    assert "separates partition dimensions" in reject.reason


def test_unknown_asset_class_is_rejected():
    reject = only_reject(parse("2026-01-06,broker,AAPL,bond,buy,1,1,USD,0"))
    assert (reject.line, reject.field) == (2, "asset_class")
    assert "unknown asset class 'bond'" in reject.reason


def test_an_asset_class_that_contradicts_the_symbol_is_rejected():
    reject = only_reject(parse("2026-01-06,broker,BTC-USDT,stock,buy,1,1,USDT,0"))
    assert reject.field == "asset_class"
    assert reject.reason == "BTC-USDT is crypto, not stock"
    # stock vs etf are served by the same source: not worth a reject
    assert parse("2026-01-06,broker,SPY,stock,buy,1,1,USD,0").rejects == []


@pytest.mark.parametrize("quantity", ["-3", "0"])
def test_a_quantity_that_is_not_positive_is_rejected(quantity):
    reject = only_reject(parse(f"2026-01-06,broker,AAPL,stock,buy,{quantity},1,USD,0"))
    assert (reject.field, reject.reason) == (
        "quantity",
        f"{quantity} is not positive; the side gives the direction",
    )


def test_a_sell_of_more_than_is_held_is_rejected_and_not_applied():
    result = parse(
        "2026-01-05,broker,AAPL,stock,buy,10,180,USD,1",
        "2026-01-07,broker,AAPL,stock,sell,12,185,USD,1",
        "2026-01-08,broker,AAPL,stock,sell,10,186,USD,1",
        "2026-01-06,other,AAPL,stock,transfer_out,1,,USD,0",
    )
    assert [(r.line, r.field) for r in result.rejects] == [(3, "quantity"), (5, "quantity")]
    assert (
        result.rejects[0].reason
        == "sell of 12 AAPL on 2026-01-07 but account 'broker' holds 10 then"
    )
    assert (
        result.rejects[1].reason
        == "transfer_out of 1 AAPL on 2026-01-06 but account 'other' holds 0 then"
    )
    assert [t.line for t in result.transactions] == [2, 4]  # the full sell of 10 still counts


def test_a_sell_is_checked_in_time_order_not_file_order():
    result = parse(
        "2026-01-09,broker,AAPL,stock,sell,5,185,USD,1",
        "2026-01-05,broker,AAPL,stock,buy,10,180,USD,1",
    )
    assert result.rejects == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("2026-13-01", "'2026-13-01' is not a valid date: month must be in 1..12"),
        ("05/01/2026", "'05/01/2026' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z])"),
        ("", "'' is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z])"),
        ("2027-01-01", "'2027-01-01' is in the future"),
    ],
)
def test_a_malformed_or_future_date_is_rejected(raw, reason):
    reject = only_reject(parse(f"{raw},broker,AAPL,stock,buy,1,1,USD,0"))
    assert (reject.line, reject.field, reject.reason) == (2, "date", reason)


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ("2026-01-06,broker,AAPL,stock,hold,1,1,USD,0", "side", "unknown side 'hold'"),
        ("2026-01-06,broker,AAPL,stock,buy,ten,1,USD,0", "quantity", "'ten' is not a number"),
        ("2026-01-06,broker,AAPL,stock,buy,1,,USD,0", "price", "is empty"),
        ("2026-01-06,broker,AAPL,stock,buy,1,-1,USD,0", "price", "-1 is negative"),
        ("2026-01-06,broker,AAPL,stock,buy,1,1,USD,-2", "fee", "-2 is negative"),
        (
            "2026-01-06,broker,AAPL,stock,buy,1,1,dollars,0",
            "currency",
            "'dollars' is not a currency",
        ),
        ("2026-01-06,,AAPL,stock,buy,1,1,USD,0", "account", "'' is not an account name"),
        ("2026-01-06,broker,AAPL,stock,buy,1", "line", "6 fields where the header has 9"),
        (
            "2026-01-06,broker,AAPL,stock,buy,NaN,1,USD,0",
            "quantity",
            "'NaN' is not a finite number",
        ),
    ],
)
def test_every_field_is_checked(line, field, reason):
    reject = only_reject(parse(line))
    assert reject.field == field
    assert reject.reason.startswith(reason), reject.reason


def test_line_numbers_count_comments_blank_lines_and_the_header():
    result = parse(
        "# my portfolio",
        "",
        "2026-01-05,broker,AAPL,stock,buy,10,180,USD,1",
        "2026-01-05,broker,AAPL,stock,buy,-1,180,USD,1",
    )
    assert result.data_lines == 2
    assert result.transactions[0].line == 4
    assert str(only_reject(result)).startswith("line 5, quantity:")


def test_a_missing_column_fails_the_whole_file_with_its_name():
    with pytest.raises(PortfolioFormatError, match="lacks column\\(s\\) fee"):
        parse(
            "2026-01-05,broker,AAPL,stock,buy,10,180,USD",
            header="date,account,symbol,asset_class,side,quantity,price,currency\n",
        )
    with pytest.raises(PortfolioFormatError, match="no header"):
        parse_portfolio("\n# nothing\n")


def test_ids_are_stable_when_lines_are_inserted_and_duplicates_are_told_apart():
    line = "2026-01-05,broker,AAPL,stock,buy,10,180,USD,1"
    before = parse(line, line)
    after = parse("2025-12-01,broker,MSFT,stock,buy,1,400,USD,0", line, line)
    ids = [t.txn_id for t in before.transactions]
    assert ids[0] != ids[1] and ids[1] == ids[0] + "-2"
    assert [t.txn_id for t in after.transactions if t.symbol == "AAPL"] == ids


def test_own_txn_ids_are_kept_and_must_be_unique():
    result = parse(
        "2026-01-05,broker,AAPL,stock,buy,10,180,USD,1,T1",
        "2026-01-06,broker,AAPL,stock,buy,1,180,USD,1,T1",
        header=HEADER.strip() + ",txn_id\n",
    )
    assert [t.txn_id for t in result.transactions] == ["T1"]
    assert only_reject(result).reason == "duplicate txn_id 'T1' (first on line 2)"


def test_the_demo_sample_is_valid():
    from platform_pkg.portfolio.resources import DEMO_PORTFOLIO

    result = parse_portfolio(DEMO_PORTFOLIO.read_text(), known_symbol=demo_only, now=NOW)
    assert result.rejects == []
    assert result.data_lines == len(result.transactions) == 10
