#!/usr/bin/python3
"""Every query of the Grafana dashboard (deploy/grafana/dashboards/pglens.json) against a real
Prometheus (Debian's /usr/bin/prometheus) scraping a real pglens every second, after a small
application's traffic through pglens (tests/support/app_traffic.py: an N+1 loop, so a finding
exists, and failing statements, so errors do):
  - each template variable's label_values() query returns values, the ones the traffic made
    (the traffic then runs a second time, as an application's would go on);
  - each PromQL expression returns at least one series with a finite value, once with every
    variable at "All" and once with $database and $fingerprint set to the traffic's own
    (the N+1 statement's fingerprint); $__rate_interval stands for 1m;
  - scripts/render_dashboard.py draws every panel from them (HTML only, no "No data").
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("PGLENS_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
from app_traffic import App, wait_for  # noqa: E402
from pglens_test import free_port  # noqa: E402
import render_dashboard as rd  # noqa: E402

PROMETHEUS = os.environ.get("PGLENS_PROMETHEUS_BIN", "/usr/bin/prometheus")
DASHBOARD = os.path.join(SOURCE, "deploy", "grafana", "dashboards", "pglens.json")
RATE_INTERVAL = "1m"


def start_prometheus(work, target):
    port = free_port()
    config = os.path.join(work, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: pglens\n    static_configs:\n"
                f"      - targets: [\"{target}\"]\n")
    log = open(os.path.join(work, "prometheus.log"), "w")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}",
                             f"--storage.tsdb.path={work}/data",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, port


def finite_series(result):
    """Series of an instant query's result that hold a finite value."""
    return [r for r in result if math.isfinite(float(r["value"][1]))]


def main():
    if not os.access(PROMETHEUS, os.X_OK):
        raise SystemExit(f"FAIL: {PROMETHEUS} not found (scripts/install-deps.sh installs prometheus)")
    dashboard = rd.load(DASHBOARD)
    targets = list(rd.queries(dashboard))
    variables = rd.variables(dashboard)
    work = tempfile.mkdtemp(prefix="pglens-grafana-")
    app = App("pglens_grafana")
    prom_proc = None
    ok = False
    try:
        prom_proc, prom_port = start_prometheus(work, f"127.0.0.1:{app.http}")
        prom = rd.Prometheus(f"http://127.0.0.1:{prom_port}")
        app.run()

        def advice():
            with urllib.request.urlopen(f"http://127.0.0.1:{app.http}/api/advice", timeout=5) as r:
                return json.load(r)["findings"]
        [finding] = wait_for(advice, "the N+1 finding")
        mine = {"database": app.db, "fingerprint": finding["fingerprint"]}

        # The variables' own queries return the values the traffic made.
        def variable_values():
            found = {}
            for name, v in variables.items():
                try:
                    found[name] = prom.label_values(rd.variable_query(v))
                except OSError:
                    return None
                if mine.get(name) not in found[name]:
                    return None
            return found
        values = wait_for(variable_values, "Prometheus to have the dashboard variables' values "
                          f"({mine})", timeout=25)
        # Again, now that Prometheus has scraped every series once: rate() needs an increase it
        # saw, and a series' first sample (the fingerprints' top-K ones start on pglens' next
        # tick) is no increase.
        app.run()

        every = {name: v.get("allValue") or ".*" for name, v in variables.items()}
        runs = [("all", every), ("mine", {**every, **mine})]
        missing = []

        def all_answer():
            missing.clear()
            for label, chosen in runs:
                for title, target in targets:
                    expr = rd.substitute(target["expr"], chosen, RATE_INTERVAL)
                    if not finite_series(prom.instant(expr)):
                        missing.append(f"[{label}] {title} / {target['refId']}: {expr}")
            return not missing
        try:
            wait_for(all_answer, "every dashboard query to return data", timeout=25)
        except SystemExit:
            print("FAIL: these dashboard queries returned no finite value:")
            print("\n".join("  " + m for m in missing))
            raise
        print(f"{len(targets)} PromQL expressions x {len(runs)} variable settings returned data; "
              f"variables: " + ", ".join(f"${k} ({len(v)} values)" for k, v in values.items()))

        # The renderer the README's picture comes from draws each panel from those answers.
        page, _, _ = rd.render(prom, dashboard, minutes=1, rate_interval=RATE_INTERVAL)
        drawn = [p for p in rd.panels(dashboard) if p.get("type") != "row"]
        for p in drawn:
            title = rd.substitute(p["title"], {k: "All" for k in variables}, RATE_INTERVAL)
            assert rd.esc(title) in page, f"the rendering lacks panel {title!r}"
        assert "No data" not in page, "the rendering has a panel with no data"
        with open(os.path.join(work, "dashboard.html"), "w") as f:
            f.write(page)
        print(f"scripts/render_dashboard.py drew {len(drawn)} panels")
        ok = True
        return 0
    finally:
        if prom_proc is not None:
            prom_proc.terminate()
            prom_proc.wait(timeout=10)
        if not ok:
            print("---- pglens log ----")
            print(app.log_tail())
            print("---- prometheus log ----")
            print(open(os.path.join(work, "prometheus.log")).read()[-3000:])
        app.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    t0 = time.monotonic()
    status = main()
    print(f"({time.monotonic() - t0:.1f} s)")
    sys.exit(status)
