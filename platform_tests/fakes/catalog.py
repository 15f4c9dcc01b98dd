"""Many markets and coins for the catalogue's tests and benchmark, the same for the same arguments:
a Binance-dialect exchange's pairs (for :class:`~platform_tests.fakes.binance.FakeBinance`) and a
CoinGecko coin directory with shared tickers and ranks (for
:class:`~platform_tests.fakes.coingecko.FakeCoinGecko`)."""

from __future__ import annotations

import random

# The last is a quote the platform does not price as crypto: its pairs are not catalogued.
QUOTES = ("USDT", "BTC", "FDUSD", "TRY")


def exchange_pairs(n: int) -> dict[str, tuple[str, str]]:
    """``n`` pairs ``X0000USDT``, ``X0000BTC``, ...: each base under the quotes in turn."""
    pairs = {}
    for i in range(n):
        base, quote = f"X{i // len(QUOTES):04d}", QUOTES[i % len(QUOTES)]
        pairs[f"{base}{quote}"] = (base, quote)
    return pairs


def coin_directory(
    n: int, *, shared_every: int = 10, ranked: int = 1000, seed: int = 0
) -> tuple[list[dict], dict[str, int]]:
    """``n`` coins ``coin-00000`` (ticker ``c00000``), every ``shared_every``-th sharing its
    predecessor's ticker, and market-cap ranks 1.. for ``ranked`` of them at random."""
    coins, ticker = [], ""
    for i in range(n):
        if not (shared_every and i % shared_every == shared_every - 1):
            ticker = f"c{i:05d}"
        coins.append({"id": f"coin-{i:05d}", "symbol": ticker, "name": f"Coin {i:05d}"})
    chosen = random.Random(seed).sample([c["id"] for c in coins], min(ranked, n))
    return coins, {coin: rank for rank, coin in enumerate(chosen, 1)}
