#!/usr/bin/python3
"""docker-compose.yml, Dockerfile and deploy/prometheus.yml against the pglens that is built here.

No Docker engine runs on these machines, so this checks what can be checked without one:
  - the compose file parses and has postgres (postgres:15), pglens (built from the Dockerfile,
    Debian 12, scripts/install-deps.sh + scripts/build.sh) and prometheus (prom/prometheus, with
    deploy/prometheus.yml mounted);
  - every flag of the pglens command line is one `pglens --help` lists, and every one of them is
    used by the integration tests too;
  - --upstream points at the postgres service with its password; the Prometheus scrape target is
    the pglens service on its --http port; promtool accepts deploy/prometheus.yml;
  - pglens starts with exactly that command line (addresses moved to free loopback ports, no
    Postgres needed until a client comes) and answers /healthz and /metrics;
  - grafana (grafana/grafana) gets deploy/grafana/provisioning and the dashboards mounted; its
    datasource is the prometheus service, its dashboard provider reads the mounted dashboards,
    every panel and variable of the dashboard uses that datasource, and every PromQL expression
    (dashboard variables substituted) passes promtool's parser.
    tests/integration/grafana_queries.py runs those expressions against a real Prometheus.
Needs python3-yaml. Environment: PGLENS_BIN, PGLENS_SOURCE_DIR (ctest sets them).
"""
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts"))
import render_dashboard  # noqa: E402

SOURCE = os.environ.get("PGLENS_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PGLENS = os.environ.get("PGLENS_BIN") or os.path.join(SOURCE, "build", "bin", "pglens")

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)
    return condition


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def flag_value(args, name):
    """The value of --name VALUE or --name=VALUE in an argument list, or None."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def host_port(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def mounts(service):
    """{host path: container path} of a service's bind mounts."""
    out = {}
    for v in service.get("volumes") or []:
        parts = str(v).split(":")
        if len(parts) >= 2:
            out[os.path.normpath(parts[0])] = parts[1].rstrip("/")
    return out


def check_grafana(services, prometheus, promtool):
    grafana = services.get("grafana")
    if not check(grafana, "docker-compose.yml has no grafana service"):
        return
    check(str(grafana.get("image", "")).startswith("grafana/grafana"),
          f"grafana image is {grafana.get('image')}")
    depends = grafana.get("depends_on") or []
    check("prometheus" in depends, "grafana does not depend on prometheus")
    m = mounts(grafana)
    check(m.get("deploy/grafana/provisioning") == "/etc/grafana/provisioning",
          f"deploy/grafana/provisioning is not mounted at /etc/grafana/provisioning: {m}")
    dashboards_at = m.get("deploy/grafana/dashboards")
    check(dashboards_at, f"deploy/grafana/dashboards is not mounted into grafana: {m}")
    check(any(str(p).endswith(":3000") for p in grafana.get("ports") or []),
          "grafana's port 3000 is not published")

    # The datasource: the prometheus service on the port it listens on.
    prom_port = 9090
    for a in prometheus.get("command") or []:
        if str(a).startswith("--web.listen-address="):
            prom_port = host_port(str(a).split("=", 1)[1])[1]
    uids = set()
    provisioning = os.path.join(SOURCE, "deploy", "grafana", "provisioning")
    for path in glob.glob(os.path.join(provisioning, "datasources", "*.y*ml")):
        for ds in yaml.safe_load(open(path, encoding="utf-8")).get("datasources") or []:
            u = urllib.parse.urlsplit(ds.get("url", ""))
            check(ds.get("type") == "prometheus", f"{path}: datasource type {ds.get('type')}")
            check(u.hostname == "prometheus" and (u.port or 80) == prom_port,
                  f"{path}: datasource url {ds.get('url')} is not the prometheus service")
            uids.add(ds.get("uid"))
    check(uids, "no datasource provisioned in deploy/grafana/provisioning/datasources")
    paths = []
    for path in glob.glob(os.path.join(provisioning, "dashboards", "*.y*ml")):
        for p in yaml.safe_load(open(path, encoding="utf-8")).get("providers") or []:
            paths.append(((p.get("options") or {}).get("path") or "").rstrip("/"))
    check(dashboards_at in paths,
          f"no dashboard provider reads {dashboards_at} (providers read {paths})")
    home = (grafana.get("environment") or {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        check(dashboards_at and home.startswith(dashboards_at + "/") and os.path.isfile(
            os.path.join(SOURCE, "deploy", "grafana", "dashboards", home[len(dashboards_at) + 1:])),
            f"the home dashboard {home} is not one of deploy/grafana/dashboards")

    # The dashboards: every datasource reference is the provisioned one; every expression parses.
    files = glob.glob(os.path.join(SOURCE, "deploy", "grafana", "dashboards", "*.json"))
    check(files, "no dashboard in deploy/grafana/dashboards")
    rules = []
    for path in files:
        dashboard = render_dashboard.load(path)
        for where, ref in render_dashboard.datasource_refs(dashboard):
            check(ref.get("uid") in uids, f"{os.path.basename(path)}: {where} uses datasource "
                  f"{ref}, not a provisioned one ({sorted(uids)})")
        variables = {v: ".*" for v in render_dashboard.variables(dashboard)}
        queries = list(render_dashboard.queries(dashboard))
        check(queries, f"{path} has no queries")
        for title, target in queries:
            expr = render_dashboard.substitute(target["expr"], variables, "1m")
            rules.append({"record": f"check:{len(rules)}", "expr": expr})
    if rules and promtool:
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
            f.flush()
            r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True,
                               text=True, check=False)
            check(r.returncode == 0, f"promtool does not parse the dashboard's PromQL: {r.stdout}{r.stderr}")
    print(f"grafana: {len(files)} dashboard(s), {len(rules)} PromQL expressions parsed by promtool")


def main():
    with open(os.path.join(SOURCE, "docker-compose.yml"), encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    services = compose.get("services", {})
    check(set(services) >= {"postgres", "pglens", "prometheus"},
          f"services are {sorted(services)}")
    postgres, pglens, prometheus = (services.get(n, {}) for n in ("postgres", "pglens", "prometheus"))

    # postgres
    check(postgres.get("image") == "postgres:15", f"postgres image is {postgres.get('image')}")
    pg_password = (postgres.get("environment") or {}).get("POSTGRES_PASSWORD")
    check(pg_password, "postgres has no POSTGRES_PASSWORD")

    # pglens: built from the repository's Dockerfile
    build = pglens.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    dockerfile = "Dockerfile" if isinstance(build, str) else (build or {}).get("dockerfile",
                                                                             "Dockerfile")
    check(context == ".", f"pglens is not built from the repository root: build={build!r}")
    dockerfile_path = os.path.join(SOURCE, context or ".", dockerfile)
    if check(os.path.isfile(dockerfile_path), f"no {dockerfile_path}"):
        text = open(dockerfile_path, encoding="utf-8").read()
        check(re.search(r"^FROM debian:12\s*$", text, re.M), "Dockerfile is not FROM debian:12")
        check("scripts/install-deps.sh" in text, "Dockerfile does not run scripts/install-deps.sh")
        check("scripts/build.sh" in text, "Dockerfile does not run scripts/build.sh")
        check("build/bin/pglens" in text, "Dockerfile does not run build/bin/pglens")
    depends = pglens.get("depends_on") or {}
    if isinstance(depends, dict):
        healthy = (depends.get("postgres") or {}).get("condition") == "service_healthy"
    else:
        healthy = "postgres" in depends
    check(healthy, "pglens does not wait for postgres (depends_on)")

    command = pglens.get("command")
    if isinstance(command, str):
        command = command.split()
    command = [str(a) for a in command or []]
    if command and not command[0].startswith("-"):
        command = command[1:]  # the binary itself, when the command names it
    check(command, "pglens has no command line")

    # Every flag is one pglens --help lists.
    help_text = subprocess.run([PGLENS, "--help"], capture_output=True, text=True,
                               check=False).stdout
    known = set(re.findall(r"(?:^|[\s,])(--[a-z][a-z0-9-]*)", help_text))
    check(len(known) > 10, f"pglens --help listed only {sorted(known)}")
    flags = [a.split("=", 1)[0] for a in command if a.startswith("--")]
    for flag in flags:
        check(flag in known, f"pglens command line has {flag}, which pglens --help does not list")
    for flag in ("--listen", "--upstream", "--http", "--pool-mode"):
        check(flag in flags, f"pglens command line lacks {flag}")

    # ... and every one is what the integration tests run pglens with too.
    tests_text = ""
    for path in glob.glob(os.path.join(SOURCE, "tests", "integration", "*")) + glob.glob(
            os.path.join(SOURCE, "tests", "support", "*")):
        if os.path.isfile(path) and not path.endswith("compose_test.py"):
            tests_text += open(path, encoding="utf-8", errors="replace").read()
    for flag in flags:
        check(f'"{flag}"' in tests_text or f"{flag} " in tests_text,
              f"{flag} is in docker-compose.yml but no integration test runs pglens with it")

    listen = flag_value(command, "--listen")
    http = flag_value(command, "--http")
    upstream = flag_value(command, "--upstream") or ""
    check(flag_value(command, "--pool-mode") == "transaction", "pglens is not in transaction mode")
    check(listen and host_port(listen)[0] == "0.0.0.0", f"--listen {listen}: not 0.0.0.0")
    check(http and host_port(http)[0] == "0.0.0.0", f"--http {http}: not 0.0.0.0")
    u = urllib.parse.urlsplit(upstream)
    check(u.scheme in ("postgresql", "postgres") and u.hostname == "postgres" and
          (u.port or 5432) == 5432, f"--upstream {upstream} is not the postgres service")
    check(u.password == pg_password, "--upstream password is not postgres' POSTGRES_PASSWORD")
    published = [str(p) for p in pglens.get("ports") or []]
    for port in (host_port(listen)[1] if listen else None, host_port(http)[1] if http else None):
        check(any(p.endswith(f":{port}") for p in published), f"pglens port {port} not published")

    # Prometheus scrapes pglens' --http port.
    check(str(prometheus.get("image", "")).startswith("prom/prometheus"),
          f"prometheus image is {prometheus.get('image')}")
    volumes = [str(v) for v in prometheus.get("volumes") or []]
    check(any(v.startswith("./deploy/prometheus.yml:") for v in volumes),
          f"deploy/prometheus.yml is not mounted into prometheus: {volumes}")
    prom_config_path = os.path.join(SOURCE, "deploy", "prometheus.yml")
    with open(prom_config_path, encoding="utf-8") as f:
        prom = yaml.safe_load(f)
    targets = [t for job in prom.get("scrape_configs", [])
               for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
    check(targets, "deploy/prometheus.yml has no scrape target")
    for t in targets:
        host, port = host_port(t)
        check(host == "pglens", f"scrape target {t} is not the pglens service")
        check(http and port == host_port(http)[1],
              f"scrape target port {port} is not pglens' --http port ({http})")
    for job in prom.get("scrape_configs", []):
        check(job.get("metrics_path", "/metrics") == "/metrics",
              f"job {job.get('job_name')} scrapes {job.get('metrics_path')}")
    promtool = shutil.which("promtool")
    if check(promtool, "promtool not found (scripts/install-deps.sh installs prometheus)"):
        r = subprocess.run([promtool, "check", "config", "--syntax-only", prom_config_path],
                           capture_output=True, text=True, check=False)
        check(r.returncode == 0, f"promtool check config: {r.stdout}{r.stderr}")

    check_grafana(services, prometheus, promtool)

    # pglens starts with that very command line, addresses moved to loopback ports.
    run_args = list(command)
    pg_port, http_port = free_port(), free_port()
    for i, a in enumerate(run_args):
        if i > 0 and run_args[i - 1] == "--listen":
            run_args[i] = f"127.0.0.1:{pg_port}"
        if i > 0 and run_args[i - 1] == "--http":
            run_args[i] = f"127.0.0.1:{http_port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([PGLENS] + run_args, stdout=log, stderr=subprocess.STDOUT)
        try:
            answers = {}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None and len(answers) < 2:
                try:
                    for path in ("/healthz", "/metrics"):
                        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}{path}",
                                                    timeout=5) as r:
                            answers[path] = r.read().decode()
                except OSError:
                    time.sleep(0.05)
            check(answers.get("/healthz") == "ok\n", "pglens with the compose command line "
                  f"did not answer /healthz (exit {proc.poll()})")
            check("# TYPE pglens_pool_wait_seconds histogram" in answers.get("/metrics", ""),
                  "pglens with the compose command line did not serve /metrics")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if failures:
                log.seek(0)
                print("---- pglens log ----")
                print(log.read().decode(errors="replace"))

    if failures:
        print(f"{len(failures)} failed")
        return 1
    print("docker-compose.yml, Dockerfile and deploy/prometheus.yml agree with pglens "
          f"({len(flags)} flags, scrape target {', '.join(targets)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
