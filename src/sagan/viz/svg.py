"""Line charts as inline SVG (in HTML, so no namespace), for the run report and the comparison page: no plotting
package needed."""

import html
import math
from dataclasses import dataclass

# Matplotlib's tab10, so the report's and comparison page's colours match `sagan visualize curves`.
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]  # (x, y); non-finite values are left out
    color: str = ""  # default: the next of COLORS
    dashed: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (1, 2 or 5 x 10^k apart) covering [low, high]; one value gets a range around it."""
    if high <= low:
        low, high = low - max(1.0, abs(low) * 0.1), high + max(1.0, abs(high) * 0.1)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(math.ceil((high - first) / step) + 1)]


def _label(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"


def line_chart(series: list[Series], title: str, xlabel: str, ylabel: str, log_y: bool = False,
               width: int = 640, height: int = 320) -> str:
    """An SVG chart of `series` on shared axes with ticks, axis labels and a legend; a series of one point is a dot."""
    series = [Series(s.label, [(x, y) for x, y in s.points if math.isfinite(x) and math.isfinite(y)
                               and (y > 0 or not log_y)], s.color or COLORS[i % len(COLORS)], s.dashed)
              for i, s in enumerate(series)]
    series = [s for s in series if s.points]
    left, right, top, bottom = 64, 16, 28, 44
    legend_rows = math.ceil(len(series) / 3)
    height += 18 * legend_rows
    plot_w, plot_h = width - left - right, height - top - bottom - 18 * legend_rows
    out = [(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{html.escape(title)}" font-family="sans-serif" font-size="11">'),
           f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>']
    if not series:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text></svg>')
        return "".join(out)
    xs = [x for s in series for x, _ in s.points]
    ys = [math.log10(y) if log_y else y for s in series for _, y in s.points]
    x_ticks, y_ticks = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - ((math.log10(y) if log_y else y) - y0) / (y1 - y0) * plot_h

    for t in x_ticks:
        out.append(f'<line x1="{px(t):.1f}" y1="{top}" x2="{px(t):.1f}" y2="{top + plot_h}" stroke="#e5e5e5"/>'
                   f'<text x="{px(t):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{_label(t)}</text>')
    for t in y_ticks:
        y = top + plot_h - (t - y0) / (y1 - y0) * plot_h
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e5e5"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(10 ** t if log_y else t)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>'
               f'<text x="{left + plot_w / 2}" y="{top + plot_h + 32}" text-anchor="middle">{html.escape(xlabel)}'
               f'</text><text transform="translate(14 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
               f'{html.escape(ylabel + (" (log scale)" if log_y else ""))}</text>')
    for s in series:
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        if len(s.points) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="1.5"{dash}>'
                       f'<title>{html.escape(s.label)}</title></polyline>')
        if len(s.points) < 20:
            out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{s.color}"><title>'
                    f'{html.escape(s.label)}: {_label(y)} at {_label(x)}</title></circle>' for x, y in s.points]
    for i, s in enumerate(series):
        x, y = left + (i % 3) * plot_w / 3, height - 18 * legend_rows + 18 * (i // 3) + 8
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x + 20:.1f}" y2="{y}" stroke="{s.color}" stroke-width="2"'
                   f'{dash}/><text x="{x + 26:.1f}" y="{y + 4}">{html.escape(s.label)}</text>')
    out.append("</svg>")
    return "".join(out)
