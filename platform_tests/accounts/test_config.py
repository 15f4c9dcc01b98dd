"""Accounts file validation: each error names file, line, account and field; other accounts kept."""

import hashlib
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from platform_pkg.accounts.config import (
    accounts_path,
    ccxt_exchange_known,
    parse_accounts,
    read_accounts,
)
from platform_pkg.accounts.model import DEBANK_CHAINS, AccountsFile, ExchangeAccount, WalletAccount
from platform_pkg.warehouse.connection import PROJECT_ROOT

PATH = Path("data/accounts.toml")
ENV = {
    "BINANCE_KEY": "s3cr3t-key",
    "BINANCE_SECRET": "s3cr3t-secret",
    "OKX_KEY": "s3cr3t-okx-key",
    "OKX_SECRET": "s3cr3t-okx-secret",
    "OKX_PASSPHRASE": "s3cr3t-pass",
    "EMPTY": "",
}
ADDRESS = "0xAbC0000000000000000000000000000000000001"
OTHER_ADDRESS = "0x00000000000000000000000000000000000000ff"

# Lines 1-5 of most cases; a test appends its own lines from line 6 on.
BINANCE = """\
[[exchange]]
name = "binance-main"
exchange = "binance"
api_key_env = "BINANCE_KEY"
secret_env = "BINANCE_SECRET"
"""
# Lines 1-3 of the wallet cases.
COLD = f"""\
[[wallet]]
name = "cold"
address = "{ADDRESS}"
"""
# The accounts that must survive every bad one written before them.
OTHERS = f"""
[[exchange]]  # a second account that must keep working
name = "okx-1"
exchange = "okx"
api_key_env = "OKX_KEY"
secret_env = "OKX_SECRET"
password_env = "OKX_PASSPHRASE"

[[wallet]]
name = "hot"
address = "{OTHER_ADDRESS}"
source = "demo"
"""


def known_exchange(exchange_id: str) -> bool:
    return exchange_id in {"binance", "kraken", "okx"}


def parse(text: str, **kwargs) -> AccountsFile:
    kwargs.setdefault("known_exchange", known_exchange)
    kwargs.setdefault("environ", ENV)
    return parse_accounts(text, PATH, **kwargs)


def bad(block: str, *extra: str, **kwargs) -> str:
    """The one error of ``block`` + ``extra`` lines, checking the other accounts still load."""
    result = parse(block + "".join(f"{line}\n" for line in extra) + OTHERS, **kwargs)
    assert result.names == ("okx-1", "hot")
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    return str(result.errors[0])


def where(line: int, kind: str, name: str | None, field: str) -> str:
    account = f"{kind} account {name!r}" if name else f"{kind} account"
    return f"data/accounts.toml, line {line}, {account}, field {field!r}: "


def test_a_valid_file_round_trips():
    text = f"""\
# my accounts
[[exchange]]   # main
name = "binance-main"
exchange = "binance"
api_key_env = "BINANCE_KEY"
secret_env = "BINANCE_SECRET"
markets = ["btc/usdt", "ETH-USDT", "BTC-USDT"]
api_url = "http://127.0.0.1:8080/"
history_from = 2021-01-01
paging = "time"

[[exchange]]
name = "play"
exchange = "demo"

[[wallet]]
name = "cold"
address = "{ADDRESS}"
chains = ["eth", "ARB", "eth"]
history_from = "2022-03-04"

[[wallet]]
name = "demo-wallet"
address = "{OTHER_ADDRESS}"
source = "demo"
"""
    result = parse(text, debank_key_set=True)
    assert result.errors == []
    assert result.digest == hashlib.sha256(text.encode()).hexdigest()
    assert result.names == ("binance-main", "play", "cold", "demo-wallet")
    assert result.exchanges == [
        ExchangeAccount(
            name="binance-main",
            exchange="binance",
            api_key_env="BINANCE_KEY",
            secret_env="BINANCE_SECRET",
            markets=("BTC-USDT", "ETH-USDT"),
            api_url="http://127.0.0.1:8080",
            history_from=date(2021, 1, 1),
            paging="time",
            line=2,
        ),
        ExchangeAccount(name="play", exchange="demo", line=12),
    ]
    assert result.wallets == [
        WalletAccount(
            name="cold",
            address=ADDRESS.lower(),
            chains=("eth", "arb"),
            history_from=date(2022, 3, 4),
            line=16,
        ),
        WalletAccount(name="demo-wallet", address=OTHER_ADDRESS, source="demo", line=22),
    ]
    main = result.exchange("binance-main")
    assert main.credentials(ENV) == ("s3cr3t-key", "s3cr3t-secret", None)
    assert not main.is_demo and result.exchange("play").is_demo
    assert result.exchange("play").credentials(ENV) == (None, None, None)
    assert result.wallet("demo-wallet").is_demo and not result.wallet("cold").is_demo
    assert result.exchange("cold") is None and result.wallet("nope") is None


def test_credentials_are_read_when_asked_not_when_parsed():
    account = parse(BINANCE).exchange("binance-main")
    assert account.credentials({"BINANCE_KEY": "new", "BINANCE_SECRET": ""}) == ("new", None, None)


def test_secrets_never_appear_in_errors_or_reprs():
    text = (
        BINANCE
        + 'api_secret = "s3cr3t-inline"\n'
        + 'password_env = "UNSET_PASS"\n'
        + 'api_url = "https://user:s3cr3t-url@proxy.example"\n'
        + """
[[exchange]]
name = "pasted"
exchange = "kraken"
api_key_env = "s3cr3t0000aaaa1111bbbb2222"
secret_env = "s3cr3t+/=="
"""
        + f'\n[[wallet]]\nname = "w"\naddress = "0x{"ab" * 32}"\n'
        + OTHERS
    )
    result = parse(text)
    assert result.names == ("okx-1", "hot")
    shown = "\n".join(str(e) for e in result.errors) + repr(result) + repr(result.errors)
    assert "s3cr3t" not in shown
    assert "ab" * 32 not in shown
    assert "UNSET_PASS is not set" in shown  # variable names are shown, values never


def test_a_toml_syntax_error_is_one_error_with_its_line():
    result = parse(BINANCE + "paging = auto\n" + OTHERS)
    assert result.exchanges == [] and result.wallets == []
    [error] = result.errors
    assert str(error) == "data/accounts.toml, line 6: not valid TOML: Invalid value (column 10)"
    assert error.line == 6


def test_a_syntax_error_at_the_end_points_at_the_last_line():
    [error] = parse(BINANCE + 'paging = "auto').errors
    assert error.line == 6 and "end of the file" in str(error)


def test_a_byte_order_mark_is_accepted():
    assert parse("\ufeff" + BINANCE).names == ("binance-main",)


def test_unknown_top_level_keys_are_errors():
    message = bad('api_key = "s3cr3t"\n')
    assert message.startswith("data/accounts.toml, line 1: unknown top-level key 'api_key'")
    assert "s3cr3t" not in message


def test_a_single_table_instead_of_an_array_is_an_error():
    result = parse('[exchange]\nname = "x"\n' + OTHERS.replace("[[exchange]]", "[[nope]]"))
    assert result.names == ("hot",)
    assert [str(e) for e in result.errors][0] == (
        "data/accounts.toml, line 1: 'exchange' must be an array of tables: "
        "start each account with a [[exchange]] line"
    )


def test_an_unknown_field_is_named_and_its_value_never_shown():
    message = bad(BINANCE, 'api_secret = "s3cr3t"')
    assert message.startswith(where(6, "exchange", "binance-main", "api_secret"))
    assert "unknown field 'api_secret'" in message and "secret_env" in message
    assert "s3cr3t" not in message


def test_a_typo_in_a_field_name_suggests_the_field():
    message = bad(COLD, 'chain = ["eth"]')
    assert (
        message
        == where(4, "wallet", "cold", "chain") + "unknown field 'chain'; did you mean 'chains'?"
    )


def test_a_missing_name_points_at_the_table():
    message = bad(BINANCE.replace('name = "binance-main"\n', ""))
    assert message == where(1, "exchange", None, "name") + "is required"


@pytest.mark.parametrize("name", ["binance:main", "a b", "a|b", "a,b", "-lead", "x" * 65])
def test_a_name_that_cannot_be_a_partition_key_is_refused(name):
    message = bad(BINANCE.replace("binance-main", name))
    assert message.startswith(where(2, "exchange", None, "name"))
    assert "is not an account name" in message


def test_a_name_with_two_dots_is_refused():
    message = bad(COLD.replace("cold", "a..b"))
    assert message.startswith(where(2, "wallet", None, "name")) and "'..'" in message


def test_a_name_of_the_wrong_type_is_refused():
    message = bad(COLD.replace('"cold"', "42"))
    assert message == where(2, "wallet", None, "name") + "must be a string, got an integer"


def test_a_duplicate_name_rejects_the_later_account_across_kinds():
    text = OTHERS + f'\n[[wallet]]\nname = "okx-1"\naddress = "{ADDRESS}"\n'
    result = parse(text)
    assert result.names == ("okx-1", "hot")
    [error] = result.errors
    assert str(error) == where(15, "wallet", "okx-1", "name") + (
        "'okx-1' is already used by the exchange account on line 2"
    )


def test_an_unknown_exchange_suggests_close_ids():
    message = bad(BINANCE.replace('"binance"', '"binanse"'), exchange_ids=["binance", "kraken"])
    assert message == where(3, "exchange", "binance-main", "exchange") + (
        "unknown ccxt exchange id 'binanse'; did you mean 'binance'?"
    )


def test_a_missing_exchange_is_required():
    message = bad(BINANCE.replace('exchange = "binance"\n', ""))
    assert message == where(1, "exchange", "binance-main", "exchange") + "is required"


@pytest.mark.parametrize("field", ["api_key_env", "secret_env"])
def test_keys_are_required_for_a_real_exchange(field):
    block = "".join(line for line in BINANCE.splitlines(True) if not line.startswith(field))
    message = bad(block)
    assert message == where(1, "exchange", "binance-main", field) + "is required"


def test_a_demo_exchange_needs_no_keys():
    result = parse('[[exchange]]\nname = "play"\nexchange = "demo"\n')
    assert result.errors == [] and result.exchange("play").api_key_env is None


def test_a_named_variable_that_is_not_set_is_named():
    message = bad(BINANCE.replace('"BINANCE_KEY"', '"NO_SUCH_KEY"'))
    assert message == where(4, "exchange", "binance-main", "api_key_env") + (
        "environment variable NO_SUCH_KEY is not set"
    )


def test_a_named_variable_that_is_empty_is_named():
    message = bad(BINANCE.replace('"BINANCE_SECRET"', '"EMPTY"'))
    assert message == where(5, "exchange", "binance-main", "secret_env") + (
        "environment variable EMPTY is empty"
    )


@pytest.mark.parametrize("value", ["1BAD", "has-dash", "aB3dE5fG7hJ9kL1mN3pQ5rS7"])
def test_a_value_that_is_not_a_variable_name_is_refused_without_echo(value):
    message = bad(BINANCE.replace('"BINANCE_KEY"', f'"{value}"'))
    assert message.startswith(where(4, "exchange", "binance-main", "api_key_env"))
    assert "NAME of an environment variable" in message and value not in message


def test_a_password_variable_follows_the_same_rules():
    message = bad(BINANCE, 'password_env = "OKX_PASS"')
    assert message == where(6, "exchange", "binance-main", "password_env") + (
        "environment variable OKX_PASS is not set"
    )


def test_markets_of_the_wrong_type_are_refused():
    message = bad(BINANCE, 'markets = "BTC-USDT"')
    assert message == where(6, "exchange", "binance-main", "markets") + (
        'must be an array of strings like ["BTC-USDT"], got a string'
    )


def test_a_market_that_is_not_a_crypto_pair_is_named():
    message = bad(BINANCE, 'markets = ["BTC-USDT", "AAPL"]')
    assert message == where(6, "exchange", "binance-main", "markets") + (
        "market 'AAPL' is not a crypto pair like BTC-USDT (BASE-QUOTE)"
    )


def test_a_market_that_is_not_a_symbol_is_named():
    message = bad(BINANCE, 'markets = ["BTC USDT"]')
    assert message.startswith(where(6, "exchange", "binance-main", "markets") + "market 'BTC USDT'")


def test_an_empty_market_list_says_to_remove_the_field():
    message = bad(BINANCE, "markets = []")
    assert message == where(6, "exchange", "binance-main", "markets") + (
        "is empty; remove the field to sync every held or tracked market"
    )


@pytest.mark.parametrize("url", ["ftp://host", "not a url", "http://", "https:///path"])
def test_an_api_url_must_be_http_with_a_host(url):
    message = bad(BINANCE, f'api_url = "{url}"')
    assert message == where(6, "exchange", "binance-main", "api_url") + (
        f"{url!r} is not an http:// or https:// URL with a host"
    )


def test_an_api_url_with_a_password_is_refused_without_echo():
    message = bad(BINANCE, 'api_url = "https://me:pw123@proxy.example/"')
    assert message.startswith(where(6, "exchange", "binance-main", "api_url"))
    assert "pw123" not in message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"2021-13-01"', "'2021-13-01' is not a valid date"),
        ('"yesterday"', "must be a date like 2021-01-01, got 'yesterday'"),
        ("20210101", "must be a date like 2021-01-01, got an integer"),
        ("2021-01-01T00:00:00Z", "not a date and time"),
    ],
)
def test_history_from_must_be_a_date(value, reason):
    message = bad(COLD, f"history_from = {value}")
    assert message.startswith(where(4, "wallet", "cold", "history_from")) and reason in message


def test_paging_must_be_a_known_mode():
    message = bad(BINANCE, 'paging = "cursor"')
    assert message == where(6, "exchange", "binance-main", "paging") + (
        "'cursor' is not one of 'auto', 'id' or 'time'"
    )


def test_a_bad_address_is_shown():
    message = bad(COLD.replace(ADDRESS, "0x1234"))
    assert message == where(3, "wallet", "cold", "address") + (
        "'0x1234' is not an address: 0x followed by 40 hex digits"
    )


def test_an_address_of_the_wrong_type_is_refused():
    message = bad(COLD.replace(f'"{ADDRESS}"', "1234"))
    assert message == where(3, "wallet", "cold", "address") + "must be a string, got an integer"


def test_a_private_key_in_place_of_an_address_is_not_shown():
    key = "0x" + "9f" * 32
    message = bad(COLD.replace(ADDRESS, key))
    assert message.startswith(where(3, "wallet", "cold", "address") + "looks like a private key")
    assert key not in message and "9f9f" not in message


def test_an_unknown_chain_suggests_debank_ids():
    message = bad(COLD, 'chains = ["eth", "ethereum"]')
    assert message == where(4, "wallet", "cold", "chains") + (
        "unknown DeBank chain id 'ethereum'; did you mean 'eth'?"
    )


def test_an_unknown_chain_with_no_close_id_says_what_ids_look_like():
    message = bad(COLD, 'chains = ["zzzzzz"]')
    assert message == where(4, "wallet", "cold", "chains") + (
        "unknown DeBank chain id 'zzzzzz'; DeBank ids are short names such as eth, bsc, arb, op, "
        "base, matic"
    )


def test_every_bad_chain_is_reported():
    result = parse(COLD + 'chains = ["ethereum", "arbitrum"]\n')
    assert [e.message for e in result.errors] == [
        "unknown DeBank chain id 'ethereum'; did you mean 'eth'?",
        "unknown DeBank chain id 'arbitrum'; did you mean 'arb'?",
    ]


def test_chains_can_be_checked_by_the_caller():
    result = parse(
        COLD + 'chains = ["eth", "newchain"]\n', known_chain={"eth", "newchain"}.__contains__
    )
    assert result.errors == [] and result.wallet("cold").chains == ("eth", "newchain")
    assert "eth" in DEBANK_CHAINS and "newchain" not in DEBANK_CHAINS


def test_an_empty_chain_list_says_to_remove_the_field():
    message = bad(COLD, "chains = []")
    assert message == where(4, "wallet", "cold", "chains") + (
        "is empty; remove the field to use every chain DeBank serves"
    )


def test_chains_of_the_wrong_type_are_refused():
    message = bad(COLD, 'chains = "eth"')
    assert message.startswith(where(4, "wallet", "cold", "chains") + "must be an array of strings")


def test_a_wallet_source_must_be_known():
    message = bad(COLD, 'source = "zapper"')
    assert message == where(4, "wallet", "cold", "source") + (
        "'zapper' is not one of 'debank' or 'demo'"
    )


def test_a_debank_wallet_needs_the_access_key_and_a_demo_wallet_does_not():
    message = bad(COLD, debank_key_set=False)
    assert message == where(1, "wallet", "cold", "access key") + (
        "PLATFORM_DEBANK_ACCESS_KEY is not set (DeBank wallets need it)"
    )
    assert parse(COLD, debank_key_set=None).names == ("cold",)


def test_every_error_of_an_account_is_reported():
    result = parse(BINANCE + 'paging = "x"\nmarkets = []\n' + OTHERS)
    assert result.names == ("okx-1", "hot")
    assert [(e.line, e.field) for e in result.errors] == [(6, "paging"), (7, "markets")]


def test_lines_follow_the_headers_through_comments_and_blank_lines():
    text = "# accounts\n\n" + OTHERS + "\n  [[exchange]]   # spare\n" + BINANCE.split("\n", 1)[1]
    result = parse(text.replace('"BINANCE_KEY"', '"NOPE"'))
    assert [(e.line, e.account, e.field) for e in result.errors] == [
        (19, "binance-main", "api_key_env")
    ]
    assert [a.line for a in result.exchanges] == [4]


def test_inline_tables_get_the_line_of_their_key():
    result = parse(f'wallet = [{{ name = "cold", address = "{ADDRESS}" }}, {{ name = "bad" }}]\n')
    assert result.names == ("cold",)
    assert str(result.errors[0]) == where(1, "wallet", "bad", "address") + "is required"


def test_an_absolute_path_in_the_project_is_shown_relative():
    result = parse_accounts(
        "[[wallet]]\n",
        PROJECT_ROOT / "data" / "accounts.toml",
        known_exchange=known_exchange,
        environ={},
    )
    assert str(result.errors[0]).startswith("data/accounts.toml, line 1, wallet account,")


def test_read_accounts_reads_the_file_and_none_when_absent(tmp_path):
    assert (
        read_accounts(tmp_path / "missing.toml", known_exchange=known_exchange, environ=ENV) is None
    )
    path = tmp_path / "accounts.toml"
    path.write_text(BINANCE)
    result = read_accounts(path, known_exchange=known_exchange, environ=ENV)
    assert result.names == ("binance-main",)
    assert result.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_accounts_path_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("PLATFORM_ACCOUNTS", raising=False)
    assert accounts_path() == PROJECT_ROOT / "data" / "accounts.toml"
    monkeypatch.setenv("PLATFORM_ACCOUNTS", "conf/mine.toml")
    assert accounts_path() == PROJECT_ROOT / "conf" / "mine.toml"
    monkeypatch.setenv("PLATFORM_ACCOUNTS", str(tmp_path / "a.toml"))
    assert accounts_path() == tmp_path / "a.toml"
    assert accounts_path("other.toml") == PROJECT_ROOT / "other.toml"


def test_the_default_exchange_check_asks_ccxt():
    assert ccxt_exchange_known("binance")
    assert not ccxt_exchange_known("binanse")


def test_importing_the_parser_imports_neither_ccxt_nor_dagster():
    code = (
        "import sys, platform_pkg.accounts.config; "
        "assert 'ccxt' not in sys.modules and 'dagster' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)
