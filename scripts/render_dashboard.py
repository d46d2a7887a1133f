#!/usr/bin/python3
"""Draws a Grafana dashboard's panels from its own PromQL queries, without Grafana.

Grafana is not installable on the machines pglens is built on, so this is how the README shows
deploy/grafana/dashboards/pglens.json: every panel's queries are run against a real Prometheus
(query_range for graphs and stats, instant queries for bar gauges), drawn as SVG in the
dashboard's own grid (gridPos, 24 columns), written to an HTML file and, with --png, screenshot
by headless Chromium. It is a rendering of the dashboard's queries, not Grafana's UI.

  scripts/render_dashboard.py --prometheus http://127.0.0.1:9090 \\
      --dashboard deploy/grafana/dashboards/pglens.json --minutes 10 --png docs/grafana.png

The functions above main() are also what the tests read the dashboard with
(tests/integration/compose_test.py, tests/integration/grafana_queries.py).
"""
import argparse
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


# ---------------------------------------------------------------- reading a dashboard

def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def panels(dashboard):
    """Every panel, those inside collapsed rows included."""
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", []) or []


def queries(dashboard):
    """(panel title, target) for every PromQL target of every panel."""
    for p in panels(dashboard):
        for t in p.get("targets", []) or []:
            if t.get("expr"):
                yield p.get("title", ""), t


def variables(dashboard):
    """{name: variable} of the dashboard's template variables."""
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def variable_query(variable):
    q = variable.get("query")
    return q.get("query") if isinstance(q, dict) else q


def datasource_refs(dashboard):
    """(where, {"type", "uid"}) for every datasource reference of panels, targets and variables."""
    for p in panels(dashboard):
        if p.get("type") == "row":
            continue
        yield f"panel {p.get('title')!r}", p.get("datasource") or {}
        for t in p.get("targets", []) or []:
            yield f"panel {p.get('title')!r} target {t.get('refId')}", t.get("datasource") or p.get(
                "datasource") or {}
    for name, v in variables(dashboard).items():
        if v.get("type") == "query":
            yield f"variable ${name}", v.get("datasource") or {}


def substitute(expr, values, rate_interval):
    """Grafana's variables in an expression: $name / ${name} from values (a string each, a regex
    for multi-value ones), $__rate_interval, $__interval and $__range."""
    builtin = {"__rate_interval": rate_interval, "__interval": rate_interval, "__range": rate_interval}

    def one(m):
        name = m.group(1) or m.group(2)
        if name in builtin:
            return builtin[name]
        if name in values:
            return values[name]
        raise KeyError(f"unknown dashboard variable ${name} in {expr}")
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", one, expr)


def label_values_query(query):
    """label_values(metric, label) → (metric, label); label_values(label) → (None, label)."""
    m = re.fullmatch(r"\s*label_values\(\s*(?:(.+?)\s*,\s*)?(\w+)\s*\)\s*", query or "")
    if not m:
        raise ValueError(f"not a label_values() variable query: {query!r}")
    return m.group(1), m.group(2)


# ---------------------------------------------------------------- Prometheus

class Prometheus:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def get(self, path, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as r:
            doc = json.load(r)
        if doc.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {doc}")
        return doc["data"]

    def label_values(self, variable_query_text):
        metric, label = label_values_query(variable_query_text)
        params = {"match[]": metric} if metric else {}
        return self.get(f"/api/v1/label/{label}/values", **params)

    def instant(self, expr):
        return self.get("/api/v1/query", query=expr)["result"]

    def range(self, expr, start, end, step):
        return self.get("/api/v1/query_range", query=expr, start=start, end=end, step=step)["result"]


def resolve_variables(prom, dashboard, chosen=None):
    """{name: value}: what --var chose, else the variable's default (All → its allValue)."""
    chosen = dict(chosen or {})
    out = {}
    for name, v in variables(dashboard).items():
        if name in chosen:
            out[name] = chosen[name]
            continue
        current = (v.get("current") or {}).get("value")
        if v.get("includeAll") and current in ("$__all", ["$__all"], None):
            out[name] = v.get("allValue") or ".*"
        elif v.get("type") == "query":
            values = prom.label_values(variable_query(v))
            out[name] = values[0] if values else ""
        else:
            out[name] = current if isinstance(current, str) else ""
    return out


# ---------------------------------------------------------------- drawing

PALETTE = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9",
           "#FADE2A", "#FF9830", "#96D98D", "#CA95E5", "#FFB357"]
NAMED = {"green": "#73BF69", "yellow": "#F2CC0C", "blue": "#5794F2", "orange": "#FF780A",
         "red": "#F2495C", "purple": "#B877D9"}
BG, PANEL, BORDER, TEXT, MUTED, GRID = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9e", "#24272c"


def fmt(value, unit):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "No data"
    if unit == "s":
        a = abs(value)
        if a == 0:
            return "0 s"
        if a < 1e-3:
            return f"{value * 1e6:.0f} µs"
        if a < 1:
            return f"{value * 1e3:.3g} ms"
        return f"{value:.3g} s"
    suffix = {"ops": " ops/s", "reqps": " req/s"}.get(unit, "")
    a = abs(value)
    for div, letter in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{value / div:.3g}{letter}{suffix}"
    if a == 0 or a >= 100 or float(value).is_integer():
        return f"{value:.0f}{suffix}"
    return f"{value:.3g}{suffix}"


def legend(fmt_text, metric, fallback):
    if not fmt_text:
        return ", ".join(f"{k}={v}" for k, v in metric.items() if k != "__name__") or fallback
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt_text)


def nice_ticks(lo, hi, n=4):
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks, v = [], first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def esc(text):
    return html.escape(str(text), quote=True)


def series_of(result):
    out = []
    for r in result:
        pts = [(float(t), float(v)) for t, v in r.get("values", [])]
        pts = [(t, v) for t, v in pts if math.isfinite(v)]
        out.append((r["metric"], pts))
    return out


def draw_timeseries(panel, data, x0, y0, w, h, start, end):
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
    stacked = (custom.get("stacking") or {}).get("mode") == "normal"
    fill = custom.get("fillOpacity", 0) / 100
    lines = []  # (name, points)
    for target, result in data:
        for metric, pts in series_of(result):
            if pts:
                lines.append((legend(target.get("legendFormat"), metric, target["refId"]), pts))
    legend_rows = max(1, math.ceil(len(lines) / 3)) if lines else 0
    L, R, T, B = 58, 12, 30, 32 + 17 * min(legend_rows, 3)
    pw, ph = w - L - R, h - T - B
    out = []
    if not lines:
        out.append(f'<text x="{x0 + w / 2}" y="{y0 + h / 2}" text-anchor="middle" fill="{MUTED}" '
                   f'font-size="13">No data</text>')
        return out
    times = sorted({t for _, pts in lines for t, _ in pts})
    if stacked:
        acc = {t: 0.0 for t in times}
        stacked_lines = []
        for name, pts in lines:
            d = dict(pts)
            new = [(t, acc[t] + d.get(t, 0.0)) for t in times]
            base = [(t, acc[t]) for t in times]
            for t, v in new:
                acc[t] = v
            stacked_lines.append((name, new, base))
        ymax = max(acc.values())
    else:
        stacked_lines = [(name, pts, None) for name, pts in lines]
        ymax = max(v for _, pts in lines for _, v in pts)
    ymin = 0.0
    ymax = ymax * 1.1 if ymax > 0 else 1.0
    ticks = nice_ticks(ymin, ymax)
    ymax = max(ymax, ticks[-1])

    def X(t):
        return x0 + L + pw * (t - start) / (end - start)

    def Y(v):
        return y0 + T + ph * (1 - (v - ymin) / (ymax - ymin))
    for v in ticks:
        out.append(f'<line x1="{x0 + L}" x2="{x0 + L + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" '
                   f'stroke="{GRID}"/>')
        out.append(f'<text x="{x0 + L - 6}" y="{Y(v) + 4:.1f}" text-anchor="end" fill="{MUTED}" '
                   f'font-size="11">{esc(fmt(v, unit))}</text>')
    span = end - start
    step = next(s for s in (60, 120, 300, 600, 900, 1800, 3600, 7200) if span / s <= 6)
    t = math.ceil(start / step) * step
    while t <= end:
        label = time.strftime("%H:%M", time.localtime(t))
        out.append(f'<text x="{X(t):.1f}" y="{y0 + T + ph + 16}" text-anchor="middle" '
                   f'fill="{MUTED}" font-size="11">{label}</text>')
        t += step
    for i, (name, pts, base) in enumerate(stacked_lines):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{'M' if j == 0 else 'L'}{X(t):.1f},{Y(v):.1f}" for j, (t, v) in enumerate(pts))
        if fill > 0:
            back = base if base else [(pts[-1][0], ymin), (pts[0][0], ymin)]
            if base:
                back = list(reversed(base))
            area = path + " " + " ".join(f"L{X(t):.1f},{Y(v):.1f}" for t, v in back) + " Z"
            out.append(f'<path d="{area}" fill="{color}" fill-opacity="{fill:.2f}" stroke="none"/>')
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.6" '
                   f'stroke-linejoin="round"/>')
    # Legend, three to a line, at most three lines.
    lx, ly = x0 + L, y0 + T + ph + 34
    col = pw / 3
    for i, (name, pts, _) in enumerate(stacked_lines[:9]):
        cx, cy = lx + col * (i % 3), ly + 17 * (i // 3)
        color = PALETTE[i % len(PALETTE)]
        text = name if len(name) <= 30 else name[:29] + "…"
        out.append(f'<rect x="{cx:.1f}" y="{cy - 4}" width="14" height="3" rx="1" fill="{color}"/>')
        out.append(f'<text x="{cx + 20:.1f}" y="{cy}" fill="{TEXT}" font-size="11.5">{esc(text)}</text>')
    return out


def draw_stat(panel, data, x0, y0, w, h, start, end):
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    color_cfg = panel.get("fieldConfig", {}).get("defaults", {}).get("color", {})
    color = NAMED.get(color_cfg.get("fixedColor"), color_cfg.get("fixedColor") or "#73BF69")
    pts = []
    for _, result in data:
        for _, s in series_of(result):
            pts = s or pts
    out = []
    last = pts[-1][1] if pts else None
    if len(pts) > 1:
        vmax = max(v for _, v in pts) or 1.0
        sx = lambda t: x0 + w * (t - start) / (end - start)  # noqa: E731
        sy = lambda v: y0 + h - 4 - (h * 0.45) * (v / vmax)  # noqa: E731
        path = " ".join(f"{'M' if j == 0 else 'L'}{sx(t):.1f},{sy(v):.1f}" for j, (t, v) in enumerate(pts))
        area = path + f" L{sx(pts[-1][0]):.1f},{y0 + h - 4} L{sx(pts[0][0]):.1f},{y0 + h - 4} Z"
        out.append(f'<path d="{area}" fill="{color}" fill-opacity="0.18"/>')
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h * 0.58}" text-anchor="middle" '
               f'fill="{color if last is not None else MUTED}" font-size="{min(34, h * 0.3):.0f}" '
               f'font-weight="600">{esc(fmt(last, unit))}</text>')
    return out


def draw_bargauge(panel, data, x0, y0, w, h, start, end):
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    bars = []
    for target, result in data:
        for r in result:
            value = float(r["value"][1]) if "value" in r else float(r["values"][-1][1])
            bars.append((legend(target.get("legendFormat"), r["metric"], target["refId"]), value))
    out = []
    if not bars:
        out.append(f'<text x="{x0 + w / 2}" y="{y0 + h / 2}" text-anchor="middle" fill="{MUTED}" '
                   f'font-size="13">No data</text>')
        return out
    vmax = max(v for _, v in bars) or 1.0
    top, row_h = y0 + 36, min(40, (h - 46) / len(bars))
    for i, (name, v) in enumerate(bars):
        y = top + i * row_h
        color = PALETTE[i % len(PALETTE)]
        out.append(f'<text x="{x0 + 12}" y="{y + 12}" fill="{TEXT}" font-size="12">{esc(name)}</text>')
        bw = (w - 90) * v / vmax
        out.append(f'<rect x="{x0 + 12}" y="{y + 17}" width="{w - 90:.1f}" height="{row_h * 0.38:.1f}" '
                   f'fill="{GRID}" rx="2"/>')
        out.append(f'<rect x="{x0 + 12}" y="{y + 17}" width="{bw:.1f}" height="{row_h * 0.38:.1f}" '
                   f'fill="{color}" rx="2"/>')
        out.append(f'<text x="{x0 + w - 12}" y="{y + 17 + row_h * 0.3:.1f}" text-anchor="end" '
                   f'fill="{color}" font-size="14" font-weight="600">{esc(fmt(v, unit))}</text>')
    return out


DRAW = {"timeseries": draw_timeseries, "stat": draw_stat, "bargauge": draw_bargauge}


def render(prom, dashboard, minutes, rate_interval, chosen=None, width=1600):
    values = resolve_variables(prom, dashboard, chosen)
    end = time.time()
    start = end - minutes * 60
    step = max(1, int(minutes * 60 / 240))
    col, unit_h, gap = width / 24, 34, 8
    height = 0
    body = []
    for p in dashboard.get("panels", []):
        g = p.get("gridPos", {})
        x, y, w, h = g.get("x", 0) * col, g.get("y", 0) * unit_h + 56, g.get("w", 24) * col, g.get("h", 8) * unit_h
        height = max(height, y + h)
        title = substitute(p.get("title", ""), {k: ("All" if v == ".*" else v) for k, v in values.items()},
                           rate_interval)
        if p.get("type") == "row":
            body.append(f'<text x="{x + gap + 4}" y="{y + 22}" fill="{TEXT}" font-size="15" '
                        f'font-weight="600">{esc(title)}</text>')
            continue
        px, py, pw, ph = x + gap / 2, y + gap / 2, w - gap, h - gap
        body.append(f'<rect x="{px:.1f}" y="{py:.1f}" width="{pw:.1f}" height="{ph:.1f}" rx="3" '
                    f'fill="{PANEL}" stroke="{BORDER}"/>')
        body.append(f'<text x="{px + 10:.1f}" y="{py + 20:.1f}" fill="{TEXT}" font-size="13" '
                    f'font-weight="500">{esc(title)}</text>')
        draw = DRAW.get(p.get("type"))
        if draw is None:
            body.append(f'<text x="{px + 10}" y="{py + 44}" fill="{MUTED}">panel type '
                        f'{esc(p.get("type"))} is not drawn here</text>')
            continue
        data = []
        for t in p.get("targets", []):
            expr = substitute(t["expr"], values, rate_interval)
            if p.get("type") == "bargauge" or t.get("instant"):
                data.append((t, prom.instant(expr)))
            else:
                data.append((t, prom.range(expr, start, end, step)))
        body.extend(draw(p, data, px, py, pw, ph, start, end))
    height += 16
    chosen_text = ", ".join(f"${k} = {'All' if v == '.*' else v}" for k, v in values.items())
    header = (f'<text x="12" y="24" fill="{TEXT}" font-size="18" font-weight="600">'
              f'{esc(dashboard.get("title", ""))}</text>'
              f'<text x="12" y="44" fill="{MUTED}" font-size="12">Rendered from the dashboard\'s '
              f'own PromQL against Prometheus ({esc(prom.url)}), last {minutes} min, '
              f'$__rate_interval = {esc(rate_interval)}, {esc(chosen_text)}. '
              f'Not Grafana\'s UI: scripts/render_dashboard.py draws the panels.</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
           f'viewBox="0 0 {width} {height:.0f}" font-family="Inter, Roboto, \'DejaVu Sans\', sans-serif">'
           f'<rect width="100%" height="100%" fill="{BG}"/>{header}{"".join(body)}</svg>')
    page = (f'<!doctype html><html><head><meta charset="utf-8"><title>{esc(dashboard.get("title"))}'
            f'</title><style>html,body{{margin:0;background:{BG}}}</style></head><body>{svg}</body></html>')
    return page, width, int(math.ceil(height))


def screenshot(html_path, png_path, width, height, chromium=None):
    chromium = chromium or shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory(prefix="render-profile-") as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={os.path.abspath(png_path)}", "file://" + os.path.abspath(html_path)],
                       check=True, capture_output=True, timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prometheus", required=True, help="Prometheus base URL")
    ap.add_argument("--dashboard", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                        "deploy", "grafana", "dashboards", "pglens.json"))
    ap.add_argument("--minutes", type=float, default=10, help="time range, ending now")
    ap.add_argument("--rate-interval", default="1m", help="what $__rate_interval stands for")
    ap.add_argument("--var", action="append", default=[], help="NAME=VALUE for a dashboard variable")
    ap.add_argument("--html", help="where to write the HTML (default: next to --png, or stdout)")
    ap.add_argument("--png", help="screenshot it with headless Chromium into this file")
    ap.add_argument("--width", type=int, default=1600)
    args = ap.parse_args()
    chosen = dict(v.split("=", 1) for v in args.var)
    page, width, height = render(Prometheus(args.prometheus), load(args.dashboard), args.minutes,
                                 args.rate_interval, chosen, args.width)
    html_path = args.html
    if args.png and not html_path:
        html_path = tempfile.mkstemp(suffix=".html", prefix="dashboard-")[1]
    if html_path:
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(page)
    else:
        sys.stdout.write(page)
    if args.png:
        screenshot(html_path, args.png, width, height)
        if not args.html:
            os.unlink(html_path)
        print(f"{args.png}: {width}x{height}")


if __name__ == "__main__":
    main()
