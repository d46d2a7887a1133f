#!/usr/bin/python3
"""pglens' page at / in a real browser: Debian's headless Chromium loads it from a pglens that has
forwarded a small application's traffic (tests/support/app_traffic.py, with an N+1 loop), runs
its JavaScript (which fetches /api/fingerprints, /api/advice and /api/pools), and the DOM it
dumps shows every fingerprint's normalized text with its real call count, the N+1 finding with
its fix, and the pool. A screenshot is taken too, into the test's temporary directory (removed
when the test passes), or where PGLENS_PAGE_SCREENSHOT says."""
import html.parser
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from app_traffic import STATEMENTS, App, wait_for  # noqa: E402

CHROMIUM = os.environ.get("PGLENS_CHROMIUM_BIN") or shutil.which("chromium") or "/usr/bin/chromium"


def chromium(work, url, *args):
    """Headless Chromium on a fresh profile, nothing fetched but the page; returns stdout."""
    profile = tempfile.mkdtemp(prefix="profile-", dir=work)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
           "--virtual-time-budget=8000", *args, url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: chromium exited {r.returncode}: {r.stderr[-2000:]}")
    return r.stdout


class Dom(html.parser.HTMLParser):
    """The fingerprint table's rows (cell texts) and the findings' texts, from the dumped DOM."""

    def __init__(self):
        super().__init__()
        self.rows, self.findings, self.pools, self.text = [], [], [], []
        self._stack = []  # (tag, classes) of open elements
        self._row = None
        self._cell = None
        self._finding = None
        self._section = None

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        ident = dict(attrs).get("id")
        self._stack.append((tag, classes, ident))
        if ident in ("fp-body", "pools-body"):
            self._section = ident
        if tag == "tr" and self._section == "fp-body" and "fp" in classes:
            self._row = []
        if tag == "tr" and self._section == "pools-body":
            self._row = []
        if tag == "td" and self._row is not None and self._cell is None:
            self._cell = []
            self._cell_depth = len(self._stack)
        if tag == "div" and "finding" in classes:
            self._finding = []
            self._finding_depth = len(self._stack)

    def handle_endtag(self, tag):
        depth = len(self._stack)
        if self._cell is not None and tag == "td" and depth == self._cell_depth:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "tr" and self._row is not None:
            (self.rows if self._section == "fp-body" else self.pools).append(self._row)
            self._row = None
        if self._finding is not None and tag == "div" and depth == self._finding_depth:
            self.findings.append(" ".join("".join(self._finding).split()))
            self._finding = None
        if tag == "tbody":
            self._section = None
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._finding is not None:
            self._finding.append(data + " ")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"FAIL: {path} is not a PNG")
    return struct.unpack(">II", head[16:24])


def main():
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(f"FAIL: {CHROMIUM} not found (scripts/install-deps.sh installs chromium)")
    app = App("pglens_page")
    try:
        return check_page(app)
    except BaseException:
        print("---- pglens log ----")
        print(app.log_tail())
        raise
    finally:
        app.stop()


def api(app, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{app.http}{path}", timeout=5) as r:
        return json.load(r)


def check_page(app):
    work = tempfile.mkdtemp(prefix="pglens-page-")
    app.run()
    rows = wait_for(lambda: (lambda r: r if sum(x["calls"] for x in r) >= sum(STATEMENTS.values())
                             else None)(api(app, "/api/fingerprints")["fingerprints"]),
                    "the analyzer to count every statement")
    [finding] = wait_for(lambda: api(app, "/api/advice")["findings"], "the N+1 finding")
    assert finding["rule"] == "n_plus_one", finding
    by_query = {r["query"]: r for r in rows if r["database"] == app.db}
    for query, calls in STATEMENTS.items():
        assert query in by_query, f"{query!r} not in /api/fingerprints: {sorted(by_query)}"
        assert by_query[query]["calls"] == calls, by_query[query]

    url = f"http://127.0.0.1:{app.http}/"
    dom = Dom()
    dumped = chromium(work, url, "--dump-dom")
    dom.feed(dumped)
    failures = []

    def check(condition, message):
        if not condition:
            failures.append(message)
            print("FAIL:", message)

    # Every fingerprint, with its calls and errors as the API has them.
    shown = {r[0]: r for r in dom.rows}
    for query, calls in STATEMENTS.items():
        row = next((r for text, r in shown.items() if text.startswith(query)), None)
        if not check(row is not None, f"the page has no row for {query!r}"):
            continue
        api_row = by_query[query]
        check(row[1] == f"{calls:,}", f"{query!r}: the page shows {row[1]!r} calls, not {calls}")
        errors = api_row["errors"]
        check(row[7] == f"{errors:,}", f"{query!r}: the page shows {row[7]!r} errors, not {errors}")
        check(app.db in row[0] and "bookshop" in row[0], f"{query!r}: no database/application: {row[0]!r}")
    failing = next(r for t, r in shown.items() if t.startswith("SELECT $1 / (pages - pages)"))
    check(failing[7] == "3", f"the failing statement shows {failing[7]!r} errors")
    n_plus_one_row = next(r for t, r in shown.items() if t.startswith(finding["query"]))
    check("N+1" in n_plus_one_row[0], f"the N+1 statement's row is not tagged: {n_plus_one_row[0]!r}")

    # Each row draws its latency histogram.
    svgs = dumped.count('<svg width="160" height="30"')
    check(svgs == len(dom.rows), f"{svgs} histograms for {len(dom.rows)} rows")
    check('class="bar"' in dumped, "no histogram bars drawn")

    # The finding: what, the evidence, the fix, the saving.
    check(len(dom.findings) == 1, f"{len(dom.findings)} findings on the page")
    text = dom.findings[0] if dom.findings else ""
    for part in ("N+1 query", finding["query"], finding["parent_query"], finding["fix"].split("\n")[0],
                 "executions per occurrence 20", "estimated saving"):
        check(" ".join(part.split()) in text, f"the finding does not show {part!r}: {text[:600]!r}")

    # The pool, with its connections.
    pools = api(app, "/api/pools")["pools"]
    mine = [p for p in pools if p["database"] == app.db]
    check(len(dom.pools) == len(pools), f"{len(dom.pools)} pool rows for {len(pools)} pools")
    row = next((r for r in dom.pools if r[0].startswith(f"{app.db} · postgres")), None)
    if check(row is not None and mine, f"no row for pool {app.db}: {dom.pools}"):
        check("transaction mode · size 4" in row[0], f"pool row: {row[0]!r}")
        check(f"{mine[0]['idle']} idle" in row[1], f"pool row connections: {row[1]!r} vs {mine[0]}")

    check("Live · updated" in dumped, "the page does not say it is live")

    # A screenshot: the same page, drawn.
    shot = os.environ.get("PGLENS_PAGE_SCREENSHOT") or os.path.join(work, "page.png")
    target = f"{url}#fp={finding['fingerprint']}"
    chromium(work, target, f"--screenshot={shot}", "--window-size=1440,1700")
    width, height = png_size(shot)
    check((width, height) == (1440, 1700), f"screenshot is {width}x{height}")
    check(os.path.getsize(shot) > 50_000, f"screenshot is only {os.path.getsize(shot)} bytes")

    if failures:
        print(f"{len(failures)} failed; the dumped DOM is in {work}/dom.html")
        with open(os.path.join(work, "dom.html"), "w") as f:
            f.write(dumped)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print(f"page in headless Chromium: {len(dom.rows)} fingerprints with their calls and histograms, "
          f"the N+1 finding with its fix, {len(dom.pools)} pool(s); a {width}x{height} screenshot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
