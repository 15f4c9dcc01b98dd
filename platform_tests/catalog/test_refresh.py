"""The refresh plan: added, delisted, restored, updated, nothing rewritten, failed sources kept."""

from datetime import UTC, datetime, timedelta

from platform_pkg.catalog.model import Entry, Listing, SourceResult
from platform_pkg.catalog.refresh import ChangeKind, plan_refresh

T0 = datetime(2026, 11, 2, 4, 10, tzinfo=UTC)
T1 = T0 + timedelta(days=7)
T2 = T1 + timedelta(days=7)


def coin(ticker: str, coin_id: str, name: str | None = None) -> Listing:
    return Listing(
        f"{ticker}-USD", name or coin_id.title(), "crypto", None, "USD", "coingecko", coin_id
    )


def pair(base: str, quote: str = "USDT") -> Listing:
    return Listing(
        f"{base}-{quote}",
        f"{base}/{quote}",
        "crypto",
        "binance",
        quote,
        "ccxt:binance",
        base + quote,
    )


def answered(source: str, *listings: Listing) -> SourceResult:
    return SourceResult(source, list(listings), started_at=T0, requests=1)


def failed(source: str) -> SourceResult:
    return SourceResult(source, None, started_at=T0, error="HTTP 503", requests=5)


def apply(stored: dict[str, Entry], plan) -> dict[str, Entry]:
    return stored | {c.entry.asset_id: c.entry for c in plan.changes}


def test_a_first_refresh_adds_everything_and_the_same_answer_writes_nothing():
    results = [
        answered("ccxt:binance", pair("BTC"), pair("ETH")),
        answered("coingecko", coin("BTC", "bitcoin")),
    ]
    plan = plan_refresh({}, results, T0)
    assert plan.counts() == {"added": 3, "updated": 0, "delisted": 0, "restored": 0}
    stored = apply({}, plan)
    assert stored["BTC-USDT"] == Entry(pair("BTC"), True, first_seen=T0, last_seen=T0)
    again = plan_refresh(stored, results, T1)
    assert again.changes == [] and again.unchanged == 3 and again.active == 3


def test_a_listing_gone_is_delisted_softly_and_restored_when_it_comes_back():
    stored = apply({}, plan_refresh({}, [answered("ccxt:binance", pair("BTC"), pair("LUNA"))], T0))
    gone = plan_refresh(stored, [answered("ccxt:binance", pair("BTC"))], T1, {"ccxt:binance": T0})
    assert [(c.kind, c.entry.asset_id) for c in gone.changes] == [
        (ChangeKind.DELISTED, "LUNA-USDT")
    ]
    luna = gone.changes[0].entry
    assert (luna.is_active, luna.delisted_at, luna.last_seen, luna.first_seen) == (
        False,
        T1,
        T0,
        T0,
    )
    stored = apply(stored, gone)
    assert plan_refresh(stored, [answered("ccxt:binance", pair("BTC"))], T2).changes == []
    back = plan_refresh(stored, [answered("ccxt:binance", pair("BTC"), pair("LUNA"))], T2)
    (change,) = back.changes
    assert change.kind is ChangeKind.RESTORED
    assert (change.entry.is_active, change.entry.delisted_at) == (True, None)
    assert (change.entry.first_seen, change.entry.last_seen) == (T0, T2)


def test_a_failed_source_leaves_its_entries_as_they_were():
    stored = apply(
        {},
        plan_refresh(
            {},
            [
                answered("ccxt:binance", pair("BTC")),
                answered("coingecko", coin("BTC", "bitcoin"), coin("ETH", "ethereum")),
            ],
            T0,
        ),
    )
    # CoinGecko is down: nothing of it is delisted; the exchange's own changes still count.
    plan = plan_refresh(stored, [answered("ccxt:binance", pair("SOL")), failed("coingecko")], T1)
    assert [(c.kind, c.entry.asset_id) for c in plan.changes] == [
        (ChangeKind.DELISTED, "BTC-USDT"),
        (ChangeKind.ADDED, "SOL-USDT"),
    ]
    assert plan.held == 2 and plan.active == 3


def test_a_failed_source_keeps_its_entries_even_when_another_source_lists_the_key():
    gecko = coin("BTC", "bitcoin")
    stored = apply({}, plan_refresh({}, [answered("coingecko", gecko)], T0))
    exchange = Listing(
        "BTC-USD", "BTC/USD", "crypto", "coinbase", "USD", "ccxt:coinbase", "BTC-USD"
    )
    plan = plan_refresh(stored, [answered("ccxt:coinbase", exchange), failed("coingecko")], T1)
    assert plan.changes == [] and plan.held == 1


def test_the_first_source_to_list_a_key_owns_it_and_a_change_of_owner_is_an_update():
    exchange = Listing(
        "BTC-USD", "BTC/USD", "crypto", "coinbase", "USD", "ccxt:coinbase", "BTC-USD"
    )
    gecko = coin("BTC", "bitcoin")
    stored = apply(
        {},
        plan_refresh({}, [answered("ccxt:coinbase", exchange), answered("coingecko", gecko)], T0),
    )
    assert stored["BTC-USD"].listing.source == "ccxt:coinbase"
    plan = plan_refresh(stored, [answered("ccxt:coinbase"), answered("coingecko", gecko)], T1)
    (change,) = plan.changes
    assert (change.kind, change.entry.listing, change.source) == (
        ChangeKind.UPDATED,
        gecko,
        "coingecko",
    )
    assert (change.entry.first_seen, change.entry.last_seen) == (T0, T1)


def test_a_renamed_listing_is_updated_and_an_unchanged_one_is_not():
    stored = apply(
        {},
        plan_refresh(
            {}, [answered("coingecko", coin("POL", "polygon-ecosystem-token", "POL"))], T0
        ),
    )
    renamed = coin("POL", "polygon-ecosystem-token", "POL (ex-MATIC)")
    plan = plan_refresh(stored, [answered("coingecko", renamed)], T1)
    assert [c.kind for c in plan.changes] == [ChangeKind.UPDATED]
    assert plan.changes[0].entry.listing.name == "POL (ex-MATIC)"


def test_a_source_switched_off_lists_nothing_so_its_entries_are_delisted():
    demo = Listing("AAPL", "Apple Inc.", "stock", "demo", "USD", "demo", "AAPL")
    only_demo = Listing("SPY", "SPDR", "etf", "demo", "USD", "demo", "SPY")
    stored = apply({}, plan_refresh({}, [answered("demo", demo, only_demo)], T0))
    listed = Listing("AAPL", "Apple Inc.", "stock", "XNAS", "USD", "listings", "AAPL")
    plan = plan_refresh(stored, [answered("listings", listed)], T1)
    kinds = {c.entry.asset_id: (c.kind, c.source) for c in plan.changes}
    assert kinds == {
        "AAPL": (ChangeKind.UPDATED, "listings"),
        "SPY": (ChangeKind.DELISTED, "demo"),
    }
