#!/usr/bin/python3
"""deploy/k8s against itself and against pglens (no cluster runs here):
  - kustomization.yaml lists every manifest, each parses; the Deployment runs N > 1 replicas whose
    labels the Service, the PodDisruptionBudget and the Deployment's own selector all match;
  - the container's ports are the ones the ConfigMap's TOML listens on (listen, http), the
    Service's targetPorts and the Prometheus annotations name them, --config and auth_file are
    where the ConfigMap and the Secret are mounted;
  - readiness is on /healthz, and terminationGracePeriodSeconds exceeds the preStop sleep plus
    shutdown_timeout;
  - pglens accepts the ConfigMap's TOML as it is (only its addresses moved to free loopback ports
    and the Secret's userlist written where it is mounted), and answers every probe path with 200;
    after SIGTERM the readiness path answers 503 while the liveness path stays 200.
Needs python3-yaml. Environment: PGLENS_BIN, PGLENS_SOURCE_DIR (ctest sets them).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request

import yaml

SOURCE = os.environ.get("PGLENS_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PGLENS = os.environ.get("PGLENS_BIN") or os.path.join(SOURCE, "build", "bin", "pglens")
K8S = os.path.join(SOURCE, "deploy", "k8s")
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


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


kustomization = yaml.safe_load(open(os.path.join(K8S, "kustomization.yaml")))
files = sorted(f for f in os.listdir(K8S) if f.endswith(".yaml") and f != "kustomization.yaml")
check(sorted(kustomization["resources"]) == files, f"kustomization lists {kustomization['resources']}, dir has {files}")
docs = [d for f in files for d in yaml.safe_load_all(open(os.path.join(K8S, f))) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
for kind in ("Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"):
    check(len(by_kind.get(kind, [])) == 1, f"want one {kind}, have {len(by_kind.get(kind, []))}")
deployment, service = by_kind["Deployment"][0], by_kind["Service"][0]
configmap, secret, pdb = by_kind["ConfigMap"][0], by_kind["Secret"][0], by_kind["PodDisruptionBudget"][0]

spec = deployment["spec"]
pod = spec["template"]
labels = pod["metadata"]["labels"]
check(spec["replicas"] > 1, f"replicas: {spec['replicas']}")
for name, selector in (("Deployment", spec["selector"]["matchLabels"]), ("Service", service["spec"]["selector"]),
                       ("PodDisruptionBudget", pdb["spec"]["selector"]["matchLabels"])):
    check(all(labels.get(k) == v for k, v in selector.items()), f"{name} selector {selector} misses the pods {labels}")
check(pdb["spec"].get("maxUnavailable", 0) < spec["replicas"] or pdb["spec"].get("minAvailable", 0) < spec["replicas"],
      "the PodDisruptionBudget allows no eviction at all")

[container] = pod["spec"]["containers"]
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
args = container["args"]
config_path = args[args.index("--config") + 1]
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
volumes = {v["name"]: v for v in pod["spec"]["volumes"]}


def mounted_file(path, kind, name_key):
    """The (volume, key) a path in the container comes from."""
    for vol, mount in mounts.items():
        if path.startswith(mount.rstrip("/") + "/"):
            key = path[len(mount.rstrip("/")) + 1:]
            source = volumes[vol].get(kind)
            return source and source.get(name_key), key
    return None, None


cm_name, cm_key = mounted_file(config_path, "configMap", "name")
check(cm_name == configmap["metadata"]["name"] and cm_key in configmap["data"],
      f"--config {config_path} is not the ConfigMap's file ({cm_name}, {cm_key})")
toml_text = configmap["data"].get(cm_key, "")
config = tomllib.loads(toml_text)["pglens"]
listen_port = int(config["listen"].rsplit(":", 1)[1])
http_port = int(config["http"].rsplit(":", 1)[1])
check(ports.get("postgres") == listen_port, f"container port postgres {ports.get('postgres')} != listen {listen_port}")
check(ports.get("http") == http_port, f"container port http {ports.get('http')} != http {http_port}")
for p in service["spec"]["ports"]:
    check(p["targetPort"] in ports or p["targetPort"] in ports.values(), f"Service targetPort {p['targetPort']} is no container port")
annotations = pod["metadata"]["annotations"]
check(annotations.get("prometheus.io/scrape") == "true", "no prometheus.io/scrape annotation")
check(int(annotations.get("prometheus.io/port", 0)) == http_port, "prometheus.io/port is not the http port")
check(annotations.get("prometheus.io/path") == "/metrics", "prometheus.io/path is not /metrics")
secret_name, secret_key = mounted_file(config["auth_file"], "secret", "secretName")
check(secret_name == secret["metadata"]["name"] and secret_key in secret.get("stringData", {}),
      f"auth_file {config['auth_file']} is not the Secret's file")

readiness, liveness = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
check(readiness["path"] == "/healthz", f"readiness on {readiness['path']}")
for probe in (readiness, liveness):
    check(probe["port"] in ("http", http_port), f"probe on port {probe['port']}, not http")
pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
sleep = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
grace = pod["spec"]["terminationGracePeriodSeconds"]
check(grace > sleep + config.get("shutdown_timeout", 30),
      f"terminationGracePeriodSeconds {grace} <= preStop {sleep} + shutdown_timeout {config.get('shutdown_timeout', 30)}")

# pglens with the ConfigMap's TOML, on loopback: the Secret's userlist where auth_file says, moved
# into a scratch directory.
work = tempfile.mkdtemp(prefix="pglens-k8s-")
try:
    users = os.path.join(work, "userlist.txt")
    open(users, "w").write(secret["stringData"][secret_key])
    port, http = free_port(), free_port()
    text = toml_text.replace(config["listen"], f"127.0.0.1:{port}").replace(config["http"], f"127.0.0.1:{http}")
    text = text.replace(config["auth_file"], users)
    path = os.path.join(work, "pglens.toml")
    open(path, "w").write(text)
    log_path = os.path.join(work, "pglens.log")
    proc = subprocess.Popen([PGLENS, "--config", path], stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and get(http, "/healthz")[0] is None and proc.poll() is None:
            time.sleep(0.05)
        for probe in (readiness, liveness):
            status, body = get(http, probe["path"])
            check(status == 200, f"{probe['path']} answered {status} {body!r} (pglens exit {proc.poll()})")
        check(get(http, "/metrics")[0] == 200, "/metrics did not answer")
        # With no client to wait for, SIGTERM ends it at once (the 503 while draining is
        # drain_under_load's to see, with clients).
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        check(code == 0, f"pglens exited {code} on SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if failures:
        print(open(log_path).read()[-3000:])
finally:
    shutil.rmtree(work, ignore_errors=True)

if failures:
    sys.exit(1)
print(f"deploy/k8s: {spec['replicas']} replicas, ports {listen_port}/{http_port}, probes "
      f"{readiness['path']} and {liveness['path']}, grace {grace} s > {sleep:g} + {config.get('shutdown_timeout', 30)} s; "
      "pglens runs the ConfigMap's TOML")
