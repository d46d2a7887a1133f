#!/usr/bin/python3
"""pglens-bench idle clients: resident memory per idle client, pglens and PgBouncer side by side,
and whether 64 active clients are still served while they sit there.

For each proxy (pglens in transaction mode; PgBouncer when installed, the same pool size), it
measures the process' VmRSS with no client, opens N clients that log in (StartupMessage, trust)
and then sit idle, measures again, runs `pgbench -S -c 64` through the proxy for a few seconds
(tps, and the same run without the idle clients, for the ratio), then closes them. Memory per
idle client = (RSS with N idle - RSS with none) / N.

    idle_clients.py --dsn postgresql://postgres@127.0.0.1:5432/db [--clients 10000]
                    [--pglens build/bin/pglens] [--pgbouncer /usr/sbin/pgbouncer|none]
                    [--seconds 5] [--json FILE]

Loopback only; the file-descriptor limit is raised to its hard limit for this process and the
proxies it starts.
"""
import argparse
import asyncio
import json
import os
import pwd
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def startup_packet(user, database):
    body = struct.pack(">I", 196608)
    for k, v in (("user", user), ("database", database), ("application_name", "idle")):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack(">I", len(body) + 4) + body


async def log_in(port, user, database, sem):
    """One client: logs in and returns its open streams (or raises)."""
    async with sem:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(startup_packet(user, database))
        await writer.drain()
        while True:  # until ReadyForQuery
            header = await reader.readexactly(5)
            kind, length = header[:1], struct.unpack(">I", header[1:])[0]
            body = await reader.readexactly(length - 4)
            if kind == b"E":
                raise RuntimeError(f"login refused: {body!r}")
            if kind == b"Z":
                return reader, writer


def pgbench(args, port, user, database, seconds):
    out = subprocess.run(
        ["pgbench", "-n", "-S", "-c", "64", "-j", "4", "-T", str(seconds), "-h", "127.0.0.1",
         "-p", str(port), "-U", user, database],
        capture_output=True, text=True, timeout=seconds + 120)
    m = re.search(r"tps = ([0-9.]+)", out.stdout)
    if out.returncode != 0 or not m:
        raise RuntimeError("pgbench failed: " + (out.stderr or out.stdout)[-500:])
    return float(m.group(1))


def wait_port(port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def measure(name, port, pid, n, user, database, seconds, args):
    await asyncio.sleep(0.5)
    baseline_tps = pgbench(args, port, user, database, seconds)
    rss_before = rss_kib(pid)
    sem = asyncio.Semaphore(500)
    started = time.monotonic()
    conns = await asyncio.gather(*(log_in(port, user, database, sem) for _ in range(n)))
    login_s = time.monotonic() - started
    await asyncio.sleep(1.0)
    rss_after = rss_kib(pid)
    loaded_tps = await asyncio.get_running_loop().run_in_executor(
        None, pgbench, args, port, user, database, seconds)
    still_up = 0
    for reader, writer in conns:  # every idle client is still there
        still_up += 0 if reader.at_eof() else 1
        writer.close()
    return {
        "proxy": name, "clients": n, "rss_kib_before": rss_before, "rss_kib_with_idle": rss_after,
        "bytes_per_idle_client": (rss_after - rss_before) * 1024 / n,
        "login_seconds": login_s, "tps_without_idle": baseline_tps, "tps_with_idle": loaded_tps,
        "idle_clients_still_connected": still_up,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--clients", type=int, default=10000)
    ap.add_argument("--pglens", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin", "pglens"))
    ap.add_argument("--pgbouncer", default=shutil.which("pgbouncer", path="/usr/sbin:/usr/bin") or "none")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    limit = raise_fd_limit()
    if limit < args.clients + 1000:
        sys.exit(f"idle_clients: the file-descriptor limit is {limit}; {args.clients} clients need more")
    url = urllib.parse.urlparse(args.dsn)
    host, pg_port = url.hostname or "127.0.0.1", url.port or 5432
    user, database = url.username or "postgres", (url.path or "/postgres")[1:]
    results = []
    work = tempfile.mkdtemp(prefix="pglens-idle-")
    os.chmod(work, 0o755)
    targets = [("pglens", None)]
    if args.pgbouncer != "none":
        targets.append(("PgBouncer", args.pgbouncer))
    for name, binary in targets:
        port = free_port()
        if name == "pglens":
            cmd = [args.pglens, "--listen", f"127.0.0.1:{port}", "--upstream",
                   f"postgresql://{user}@{host}:{pg_port}", "--pool-size", "8", "--max-overflow", "0",
                   "--max-client-conn", str(args.clients + 200), "--log-level", "warn"]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            ini = os.path.join(work, "pgbouncer.ini")
            users = os.path.join(work, "users.txt")
            with open(users, "w") as f:
                f.write(f'"{user}" ""\n')
            with open(ini, "w") as f:
                f.write(f"[databases]\n{database} = host={host} port={pg_port} dbname={database}\n\n"
                        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
                        f"auth_type = trust\nauth_file = {users}\npool_mode = transaction\n"
                        f"default_pool_size = 8\nmax_client_conn = {args.clients + 200}\n"
                        "ignore_startup_parameters = extra_float_digits,application_name\n"
                        "log_connections = 0\nlog_disconnections = 0\n")
            os.chmod(ini, 0o644)
            os.chmod(users, 0o644)
            cmd = [binary, ini]
            as_user = "postgres" if os.geteuid() == 0 else None
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    user=as_user)
        try:
            wait_port(port, proc, name)
            results.append(asyncio.run(measure(name, port, proc.pid, args.clients, user, database,
                                               args.seconds, args)))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    shutil.rmtree(work, ignore_errors=True)
    print(f"idle clients: {args.clients} logged in and left idle; pgbench -S -c 64 -T {args.seconds} "
          "through each proxy with and without them; pool of 8, transaction mode")
    print(f"{'proxy':<10} {'RSS before':>11} {'RSS idle':>11} {'per idle client':>16} "
          f"{'login':>7} {'tps alone':>10} {'tps w/ idle':>12} {'ratio':>6}")
    for r in results:
        print(f"{r['proxy']:<10} {r['rss_kib_before'] / 1024:>9.1f}MB {r['rss_kib_with_idle'] / 1024:>9.1f}MB "
              f"{r['bytes_per_idle_client'] / 1024:>13.2f}KiB {r['login_seconds']:>6.1f}s "
              f"{r['tps_without_idle']:>10.0f} {r['tps_with_idle']:>12.0f} "
              f"{r['tps_with_idle'] / r['tps_without_idle']:>5.2f}x")
        if r["idle_clients_still_connected"] != r["clients"]:
            print(f"  {r['proxy']}: only {r['idle_clients_still_connected']} of {r['clients']} idle clients "
                  "were still connected after the load")
    if len(results) == 2:
        a, b = results
        print(f"pglens/PgBouncer memory per idle client: {a['bytes_per_idle_client'] / b['bytes_per_idle_client']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
