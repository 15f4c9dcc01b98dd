"""Small charts for materialisation metadata: a PNG drawn off-screen, returned as Markdown with
the image inline (``![title](data:image/png;base64,...)``), so the UI shows it with no file
server.

matplotlib is imported only when a chart is drawn (the definitions load without it), and only
its object API is used — no pyplot, no global backend — so drawing is safe in any process.
"""

from __future__ import annotations

import base64
import io
import math

import pandas as pd

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 3.0, 100  # ~800 x 300 px
# One point a pixel is all a line can show; longer series are thinned to this many points.
MAX_POINTS = 800
# Series whose typical levels differ by more than this factor get a panel each (small
# multiples): on one axis the smaller would be a flat line at the bottom.
SCALE_RATIO = 10.0
PANELS_PER_ROW = 4
TOTAL = "*"  # the account of the portfolio's total row


def close_chart(frame: pd.DataFrame, title: str) -> str:
    """Closing prices over time: one line per symbol (columns ``symbol, ts, close``), or one
    small panel per symbol when their price levels differ more than tenfold."""
    data = frame.dropna(subset=["close"])
    if data.empty:
        return f"_{title}: no prices to chart_"
    series = {
        str(symbol): _thin(rows.sort_values("ts").set_index("ts")["close"])
        for symbol, rows in data.groupby("symbol", sort=True)
    }
    levels = [s.abs().median() for s in series.values()]
    positive = [level for level in levels if level > 0]
    spread = max(positive) / min(positive) if positive else 1.0
    if len(series) == 1 or spread <= SCALE_RATIO:
        return _lines(title, series, ylabel="close")
    return _panels(title, series)


def value_chart(frame: pd.DataFrame, base_currency: str) -> str:
    """The portfolio's value over time (columns ``date, account, value``): the total (account
    ``*``) as a bold line, each account as a thin one, in ``base_currency``. A missing value
    (a day not fully priced) is a gap, not a zero."""
    title = f"Portfolio value ({base_currency})"
    if frame.empty or frame["value"].notna().sum() == 0:
        return f"_{title}: no values to chart_"
    series = {}
    for account, rows in frame.groupby("account", sort=True):
        values = rows.sort_values("date").set_index("date")["value"].astype(float)
        values.index = pd.to_datetime(values.index)
        series[str(account)] = _thin(values)
    ordered = {"total": series.pop(TOTAL)} if TOTAL in series else {}
    return _lines(title, ordered | series, ylabel=base_currency, bold="total" if ordered else None)


def _thin(series: pd.Series, points: int = MAX_POINTS) -> pd.Series:
    """At most about ``points`` points, the last one kept."""
    step = math.ceil(len(series) / points)
    if step <= 1:
        return series
    return pd.concat([series.iloc[::step], series.iloc[-1:]]).pipe(
        lambda s: s[~s.index.duplicated(keep="last")]
    )


def _lines(title: str, series: dict[str, pd.Series], ylabel: str, bold: str | None = None) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    ax = fig.subplots()
    for name, values in series.items():
        ax.plot(values.index, values.to_numpy(), label=name, linewidth=2.0 if name == bold else 1.0)
    _style(ax, ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8, loc="upper left", frameon=False, ncols=min(len(series), 5))
    ax.set_title(title, fontsize=10)
    return _markdown(fig, title)


def _panels(title: str, series: dict[str, pd.Series]) -> str:
    from matplotlib.figure import Figure

    cols = min(len(series), PANELS_PER_ROW)
    rows = math.ceil(len(series) / cols)
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN * (1 + (rows - 1) * 0.7)), dpi=DPI)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, values) in zip(axes.flat, series.items(), strict=False):
        values = _thin(values, MAX_POINTS // cols)
        ax.plot(values.index, values.to_numpy(), linewidth=1.0)
        ax.set_title(name, fontsize=9)
        _style(ax, None, ticks=4)
    for ax in list(axes.flat)[len(series) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return _markdown(fig, title)


def _style(ax, ylabel: str | None, ticks: int = 6) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(maxticks=ticks)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.tick_params(labelsize=8)
    ax.xaxis.get_offset_text().set_fontsize(8)
    ax.grid(alpha=0.3, linewidth=0.5)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)


def _markdown(fig, title: str) -> str:
    from PIL import Image  # matplotlib's own dependency

    fig.tight_layout()
    drawn = io.BytesIO()
    fig.savefig(drawn, format="png", dpi=DPI)
    # A palette of 64 colours keeps the anti-aliased lines and makes the PNG ~3x smaller.
    image = Image.open(drawn).convert("RGB").quantize(64, method=Image.Quantize.FASTOCTREE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    alt = title.replace("[", "(").replace("]", ")")
    return f"![{alt}](data:image/png;base64,{encoded})"
