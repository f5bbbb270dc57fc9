"""Charts as inline SVG strings, for the run report and `featurizer scale`.

Hand-written rather than matplotlib so that the job's packed environment stays as it is. Every chart is
well-formed XML, so it can be embedded in the report and checked with an XML parser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH = 760
FONT = "font-family:system-ui,sans-serif"
# Tableau 10: distinct for up to ten classes; beyond that, hues spread by the golden angle.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def colour(index: int, count: int) -> str:
    if count <= len(PALETTE):
        return PALETTE[index]
    lightness = (38, 52, 66)[index % 3]
    return f"hsl({index * 137.508 % 360:.1f},65%,{lightness}%)"


def _svg(width: float, height: float, label: str, body: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{esc(label)}" style="{FONT}">'
        f"<title>{esc(label)}</title>" + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: object, size: int = 11, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{esc(text)}</text>'
    )


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values covering [low, high] (steps of 1, 2 or 5 times a power of ten)."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(s * power for s in (1, 2, 5, 10) if s * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.3g}"


def variance_chart(explained: Sequence[float], cumulative: Sequence[float]) -> str:
    """Explained variance per component (bars) and the cumulative share (line), both in percent."""
    left, top, plot_w, plot_h = 50, 20, WIDTH - 70, 220
    k = len(explained)
    slot = plot_w / max(k, 1)

    def y(share: float) -> float:
        return top + plot_h * (1 - share)

    body = []
    for tick in ticks(0, 1, 5):
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
        )
        body.append(_text(left - 6, y(tick) + 4, f"{tick * 100:.0f} %", 10, "end"))
    label_every = max(1, math.ceil(k / 25))
    for i, share in enumerate(explained):
        x = left + i * slot
        body.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{y(share):.1f}" width="{slot * 0.7:.2f}" '
            f'height="{plot_h * share:.1f}" fill="{PALETTE[0]}"><title>PC{i + 1}: {share * 100:.2f} %'
            f"</title></rect>"
        )
        if i % label_every == 0:
            body.append(_text(x + slot / 2, top + plot_h + 14, i + 1, 10, "middle"))
    points = " ".join(f"{left + (i + 0.5) * slot:.1f},{y(c):.1f}" for i, c in enumerate(cumulative))
    body.append(f'<polyline points="{points}" fill="none" stroke="{PALETTE[1]}" stroke-width="2"/>')
    body += [
        f'<circle cx="{left + (i + 0.5) * slot:.1f}" cy="{y(c):.1f}" r="2.5" fill="{PALETTE[1]}"/>'
        for i, c in enumerate(cumulative)
    ]
    body.append(_text(left + plot_w / 2, top + plot_h + 32, "principal component", 11, "middle"))
    body.append(_text(left + 8, top + 12, "■ per component", 11, extra=f' fill="{PALETTE[0]}"'))
    body.append(_text(left + 120, top + 12, "● cumulative", 11, extra=f' fill="{PALETTE[1]}"'))
    return _svg(WIDTH, top + plot_h + 42, "Explained variance per principal component", body)


def scatter(points: Sequence[tuple[str, float, float]], classes: Sequence[str]) -> str:
    """Points on the first two components, one colour per class; hovering a point names its class."""
    left, top, plot_w, plot_h = 50, 10, WIDTH - 70, 440
    xs, ys = [p[1] for p in points] or [0.0], [p[2] for p in points] or [0.0]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(ys), max(ys)
    x_pad, y_pad = (x_hi - x_lo) * 0.04 or 1, (y_hi - y_lo) * 0.04 or 1
    x_lo, x_hi, y_lo, y_hi = x_lo - x_pad, x_hi + x_pad, y_lo - y_pad, y_hi + y_pad

    def sx(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * plot_w

    def sy(v: float) -> float:
        return top + (y_hi - v) / (y_hi - y_lo) * plot_h

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>']
    for t in ticks(x_lo, x_hi):
        body.append(_text(sx(t), top + plot_h + 14, _number(t), 10, "middle"))
    for t in ticks(y_lo, y_hi):
        body.append(_text(left - 6, sy(t) + 4, _number(t), 10, "end"))
    index = {label: i for i, label in enumerate(classes)}
    radius = 3 if len(points) <= 1500 else 2.2
    for label in classes:
        circles = "".join(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{radius}"/>'
            for name, x, y in points
            if name == label
        )
        if circles:
            body.append(
                f'<g fill="{colour(index[label], len(classes))}" fill-opacity="0.75">'
                f"<title>{esc(label)}</title>{circles}</g>"
            )
    body.append(_text(left + plot_w / 2, top + plot_h + 30, "PC1", 11, "middle"))
    body.append(
        _text(14, top + plot_h / 2, "PC2", 11, "middle", f' transform="rotate(-90 14 {top + plot_h / 2})"')
    )
    return _svg(WIDTH, top + plot_h + 40, "Images on the first two principal components", body)


def _heat(share: float) -> str:
    """White (0) to dark blue (1)."""
    r, g, b = (round(255 + (end - 255) * share) for end in (8, 48, 107))
    return f"rgb({r},{g},{b})"


def heatmap(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """Confusion matrix coloured by the share of each true class (row); counts shown when cells are big.

    With many classes the names no longer fit beside the cells: they are left out and each cell's
    tooltip names its pair.
    """
    n = len(labels)
    cell = max(4.0, min(36.0, 640 / max(n, 1)))
    named = n <= 40
    margin = 170 if named else 30
    left, top = margin, margin if named else 20
    size = cell * n
    body = [f'<rect x="{left}" y="{top}" width="{size:.1f}" height="{size:.1f}" fill="#fff" stroke="#ccc"/>']
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, count in enumerate(row):
            if not count:
                continue
            share = count / total if total else 0.0
            x, y = left + j * cell, top + i * cell
            text = ""
            if cell >= 18:
                fill = "#fff" if share > 0.5 else "#222"
                text = _text(x + cell / 2, y + cell / 2 + 4, count, 10, "middle", f' fill="{fill}"')
            body.append(
                f"<g><title>{esc(labels[i])} predicted as {esc(labels[j])}: {count}</title>"
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell:.2f}" height="{cell:.2f}" '
                f'fill="{_heat(share)}"/>'
                f"{text}</g>"
            )
    if named:
        font = 11 if cell >= 14 else 9
        for i, label in enumerate(labels):
            centre = i * cell + cell / 2
            body.append(_text(left - 6, top + centre + 4, _short(label, 26), font, "end"))
            x = left + centre + 4
            body.append(
                _text(
                    x, top - 6, _short(label, 26), font, extra=f' transform="rotate(-60 {x:.1f} {top - 6})"'
                )
            )
    body.append(_text(left + size / 2, top + size + 16, "predicted class", 11, "middle"))
    body.append(
        _text(
            left - (150 if named else 12),
            top + size / 2,
            "true class",
            11,
            "middle",
            f' transform="rotate(-90 {left - (150 if named else 12)} {top + size / 2:.1f})"',
        )
    )
    return _svg(left + size + 20, top + size + 26, "Confusion matrix (share of each true class)", body)


def hbars(rows: Sequence[tuple[str, float, str]], maximum: float, label: str) -> str:
    """One horizontal bar per (name, value, text shown after the bar), scaled to `maximum`."""
    name_w, bar_w, row_h = 240, WIDTH - 340, 18
    body = []
    for i, (name, value, text) in enumerate(rows):
        y = 4 + i * row_h
        width = bar_w * value / maximum if maximum > 0 else 0
        body.append(_text(name_w - 8, y + 12, _short(name, 36), 11, "end"))
        body.append(
            f'<rect x="{name_w}" y="{y + 2}" width="{width:.1f}" height="{row_h - 5}" fill="{PALETTE[0]}">'
            f"<title>{esc(name)}: {esc(text)}</title></rect>"
        )
        body.append(_text(name_w + width + 6, y + 12, text, 11))
    return _svg(WIDTH, 8 + len(rows) * row_h, label, body)


def loglog(
    measured: Sequence[tuple[float, float]],
    line: Sequence[tuple[float, float]],
    marked: Sequence[tuple[float, float, str]],
    x_label: str,
    y_label: str,
    label: str,
) -> str:
    """Measured points, a fitted curve and labelled extrapolations on logarithmic axes."""
    left, top, plot_w, plot_h = 70, 16, WIDTH - 100, 360
    everything = [*measured, *line, *((x, y) for x, y, _ in marked)]
    x_lo = math.floor(math.log10(min(x for x, _ in everything)))
    x_hi = math.ceil(math.log10(max(x for x, _ in everything)))
    y_lo = math.floor(math.log10(min(y for _, y in everything)))
    y_hi = math.ceil(math.log10(max(y for _, y in everything)))
    x_hi, y_hi = max(x_hi, x_lo + 1), max(y_hi, y_lo + 1)

    def sx(v: float) -> float:
        return left + (math.log10(v) - x_lo) / (x_hi - x_lo) * plot_w

    def sy(v: float) -> float:
        return top + (y_hi - math.log10(v)) / (y_hi - y_lo) * plot_h

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>']
    for power in range(x_lo, x_hi + 1):
        x = sx(10**power)
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="#eee"/>')
        body.append(_text(x, top + plot_h + 14, f"{10**power:,}", 10, "middle"))
    for power in range(y_lo, y_hi + 1):
        y = sy(10**power)
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(_text(left - 6, y + 4, f"{10**power:,}", 10, "end"))
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in line)
    body.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    body += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{PALETTE[2]}"/>' for x, y in measured]
    for x, y, text in marked:
        body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{PALETTE[1]}"/>')
        body.append(_text(sx(x) - 6, sy(y) - 8, text, 11, "end"))
    body.append(_text(left + plot_w / 2, top + plot_h + 32, x_label, 11, "middle"))
    body.append(
        _text(16, top + plot_h / 2, y_label, 11, "middle", f' transform="rotate(-90 16 {top + plot_h / 2})"')
    )
    body.append(_text(left + 10, top + 16, "● measured runs", 11, extra=f' fill="{PALETTE[2]}"'))
    body.append(_text(left + 130, top + 16, "● extrapolated", 11, extra=f' fill="{PALETTE[1]}"'))
    return _svg(WIDTH, top + plot_h + 42, label, body)
