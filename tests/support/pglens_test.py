"""What the Python integration tests share: the test cluster's port, free ports, waiting for a
pglens they started to listen, checks that collect failures, and stopping what they started."""
import os
import socket
import time


def cluster_port():
    """The port of the cluster ctest started (PGLENS_TEST_CLUSTER_DIR/env)."""
    path = os.environ["PGLENS_TEST_CLUSTER_DIR"] + "/env"
    env = dict(line.strip().split("=", 1) for line in open(path) if "=" in line)
    return env["PGLENS_PGPORT"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until_listening(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.025)
    raise SystemExit("pglens did not start")


failures = []  # every failed check's message; a test exits non-zero when it is not empty


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message)
    return condition


def stop(processes, kill=False):
    """Ends the processes still running (SIGTERM, or SIGKILL with kill) and waits for them."""
    for p in processes:
        if p.poll() is None:
            p.kill() if kill else p.terminate()
            p.wait()
