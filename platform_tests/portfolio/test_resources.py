"""The portfolio file resource (where it is read from) and the market checks it relies on."""

from datetime import UTC, datetime

from platform_pkg.market.resources import MarketData
from platform_pkg.portfolio.resources import DEFAULT_PORTFOLIO, MarketChecks, PortfolioFile
from platform_pkg.warehouse.connection import PROJECT_ROOT


def test_the_path_is_configured_else_the_env_var_else_data_portfolio_csv(monkeypatch, tmp_path):
    monkeypatch.delenv("PLATFORM_PORTFOLIO", raising=False)
    assert (
        PortfolioFile().resolved_path()
        == DEFAULT_PORTFOLIO
        == PROJECT_ROOT / "data" / "portfolio.csv"
    )
    monkeypatch.setenv("PLATFORM_PORTFOLIO", "elsewhere/mine.csv")
    assert PortfolioFile().resolved_path() == PROJECT_ROOT / "elsewhere" / "mine.csv"
    assert PortfolioFile(path=str(tmp_path / "p.csv")).resolved_path() == tmp_path / "p.csv"


def test_read_gives_the_text_and_its_digest_or_none(tmp_path):
    path = tmp_path / "p.csv"
    assert PortfolioFile(path=str(path)).read() is None
    path.write_bytes("\ufeffdate,account\n".encode())
    snapshot = PortfolioFile(path=str(path)).read()
    assert snapshot.text == "date,account\n"  # a byte-order mark is not part of the header
    assert len(snapshot.digest) == 64


def test_market_checks_know_what_the_source_serves():
    checks = MarketChecks(MarketData())
    assert checks.unknown_reason("BTC-USDT") is None
    assert "does not list 'NOPE'" in checks.unknown_reason("NOPE")
    assert checks.earliest("SOL-USDT", "1h") == datetime(2020, 4, 10, tzinfo=UTC)
