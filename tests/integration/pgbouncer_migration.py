#!/usr/bin/python3
"""pglens --from-pgbouncer on real PgBouncer configs: the TOML it prints loads in pglens and
serves psql against the test cluster, with only the ports changed.

  1. Debian's default /etc/pgbouncer/pgbouncer.ini (the pgbouncer package's; its copy in
     /usr/share/doc when /etc is not readable): logfile, pidfile and the Unix socket are warned
     of; pglens starts with md5 against the same (empty) auth_file, so a login is refused as
     PgBouncer refuses it; with a user added to a copy of that userlist, psql gets through.
  2. A config with [databases] routes (a renamed database, a forced user with its password and
     pool_size, a '*' fallback), an auth_file with plaintext and md5 passwords, pool_mode,
     admin_users, timeouts and an %include: each route reaches the database and user it names,
     a wrong password is refused, and the admin console shows the carried settings.
Environment: PGLENS_BIN, PGLENS_TEST_CLUSTER_DIR (ctest sets them).
"""
import atexit
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from pglens_test import (check, cluster_port, failures, free_port, stop,  # noqa: E402
                         wait_until_listening)

PGLENS = os.environ.get("PGLENS_BIN", "build/bin/pglens")
PGPORT = cluster_port()
WORK = tempfile.mkdtemp(prefix="pglens-pgbouncer-")
RUNNING = []


@atexit.register
def cleanup():
    stop(RUNNING)
    shutil.rmtree(WORK, ignore_errors=True)


def convert(ini, cwd=None):
    r = subprocess.run([PGLENS, "--from-pgbouncer", ini], capture_output=True, text=True, cwd=cwd)
    check(r.returncode == 0, f"--from-pgbouncer {ini} exited {r.returncode}: {r.stderr}")
    return r.stdout, r.stderr


def only_ports(toml, listen_port):
    """The one change a test may make: pglens' port, and the upstream's to the test cluster."""
    toml = re.sub(r'^listen = "([^"]*):\d+"', lambda m: f'listen = "{m.group(1)}:{listen_port}"', toml,
                  flags=re.M)
    return re.sub(r"(postgresql://[^\"/]*?):5432\b", lambda m: f"{m.group(1)}:{PGPORT}", toml)


def start(name, toml):
    path = os.path.join(WORK, name + ".toml")
    open(path, "w").write(toml)
    port = int(re.search(r'^listen = ".*:(\d+)"', toml, re.M).group(1))
    log = os.path.join(WORK, name + ".log")
    proc = subprocess.Popen([PGLENS, "--config", path], stdout=open(log, "w"), stderr=subprocess.STDOUT)
    RUNNING.append(proc)
    try:
        wait_until_listening(port)
    except SystemExit:
        print(open(log).read())
        raise
    return proc, port


def psql(port, user, password, dbname, sql):
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
    r = subprocess.run(["psql", "-X", "-qAt", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", dbname,
                        "-c", sql], capture_output=True, text=True, env=env)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


# ---- 1. Debian's default pgbouncer.ini ----
debian = "/etc/pgbouncer/pgbouncer.ini"
if not os.access(debian, os.R_OK):
    debian = "/usr/share/doc/pgbouncer/examples/pgbouncer.ini"  # the same file, world-readable
toml, warnings = convert(debian)
for key in ("logfile", "pidfile", "unix_socket_dir", "no database"):
    check(f"{key}" in warnings, f"Debian's default: no warning for {key}:\n{warnings}")
check(warnings.count("warning: not carried:") == 4, f"Debian's default: unexpected warnings:\n{warnings}")
check('pool_mode = "session"' in toml and "pool_size = 20" in toml and 'auth_type = "md5"' in toml,
      "Debian's default: PgBouncer's defaults not written out:\n" + toml)
userlist = re.search(r'^auth_file = "([^"]*)"', toml, re.M).group(1)
if not os.access(userlist, os.R_OK):  # not root: the doc copy of the INI names the same file
    toml = toml.replace(userlist, "/dev/null")
proc, port = start("debian", only_ports(toml, free_port()))
code, out, err = psql(port, "postgres", "anything", "pglens_test", "SELECT 1")
check(code != 0 and "password authentication failed" in err,
      f"Debian's default: the empty userlist let a client in: {code} {out} {err}")
proc.terminate()
proc.wait()
# The same file with a user in its userlist (as an operator adds one), and psql gets through.
users = os.path.join(WORK, "userlist.txt")
open(users, "w").write((open(userlist).read() if os.access(userlist, os.R_OK) else "") +
                       '"postgres" "debian-secret"\n')
proc, port = start("debian-user", only_ports(toml.replace(f'"{userlist}"', f'"{users}"').replace(
    'auth_file = "/dev/null"', f'auth_file = "{users}"'), free_port()))
code, out, err = psql(port, "postgres", "debian-secret", "pglens_test", "SELECT current_database()")
check((code, out) == (0, "pglens_test"), f"Debian's default with a user: {code} {out} {err}")
proc.terminate()
proc.wait()

# ---- 2. routes, auth_file, pool_mode, admin users, %include ----
ini_dir = os.path.join(WORK, "pgbouncer")
os.makedirs(ini_dir)
md5 = "md5" + hashlib.md5(b"app-secret" + b"appuser").hexdigest()
with open(os.path.join(ini_dir, "userlist.txt"), "w") as f:
    f.write('"postgres" "pg-secret"\n"appuser" "%s"\n"admin" "admin-secret"\n' % md5)
with open(os.path.join(ini_dir, "timeouts.ini"), "w") as f:
    f.write("query_wait_timeout = 10\nserver_idle_timeout = 300\nidle_transaction_timeout = 60\n")
with open(os.path.join(ini_dir, "pgbouncer.ini"), "w") as f:
    f.write(f""";; a production-like PgBouncer config
[databases]
renamed = host=127.0.0.1 port=5432 dbname=pglens_test
forced = host=127.0.0.1 port=5432 dbname=pglens_test user=pglens_md5 password=md5-secret pool_size=3
* = host=127.0.0.1 port=5432

[users]
appuser = pool_mode=session

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = 6432
logfile = /var/log/pgbouncer/pgbouncer.log
auth_type = md5
auth_file = userlist.txt
admin_users = admin
stats_users = postgres
pool_mode = transaction
default_pool_size = 5
reserve_pool_size = 2
server_reset_query = DISCARD ALL
server_check_delay = 10
%include {ini_dir}/timeouts.ini
""")
toml, warnings = convert(os.path.join(ini_dir, "pgbouncer.ini"), cwd=ini_dir)
for key in ("logfile", "stats_users", "appuser = pool_mode=session"):
    check(key in warnings, f"routes: no warning for {key}:\n{warnings}")
check("md5-secret" not in warnings, "a password was printed in a warning")
check(f'auth_file = "{ini_dir}/userlist.txt"' in toml, "routes: auth_file not made absolute:\n" + toml)
proc, port = start("routes", only_ports(toml, free_port()))
for user, password, db, want in (("postgres", "pg-secret", "renamed", "pglens_test|postgres"),
                                 ("postgres", "pg-secret", "forced", "pglens_test|pglens_md5"),
                                 ("appuser", "app-secret", "forced", "pglens_test|pglens_md5"),
                                 ("postgres", "pg-secret", "pglens_test", "pglens_test|postgres")):
    code, out, err = psql(port, user, password, db, "SELECT current_database(), current_user")
    check((code, out) == (0, want), f"routes: {user}@{db}: want {want}, got {code} {out} {err}")
code, out, err = psql(port, "postgres", "wrong", "renamed", "SELECT 1")
check(code != 0 and "password authentication failed" in err, f"routes: a wrong password got in: {out} {err}")
code, out, err = psql(port, "admin", "admin-secret", "pgbouncer", "SHOW CONFIG")
config = dict(line.split("|")[:2] for line in out.splitlines() if "|" in line)
for key, want in (("pool_mode", "transaction"), ("pool_size", "5"), ("max_overflow", "2"),
                  ("pool_timeout", "10"), ("server_idle_timeout", "300"), ("idle_transaction_timeout", "60"),
                  ("server_check_delay", "10"), ("auth_type", "md5"), ("admin_users", "admin"),
                  ("server_reset_query", "DISCARD ALL")):
    check(config.get(key) == want, f"routes: SHOW CONFIG {key} = {config.get(key)!r}, want {want!r}")
code, out, err = psql(port, "admin", "admin-secret", "pgbouncer", "SHOW DATABASES")
forced = [line.split("|") for line in out.splitlines() if line.startswith("forced|")]
check(forced and forced[0][4] == "pglens_md5" and forced[0][5] == "3",
      f"routes: SHOW DATABASES for forced: {out} {err}")
proc.terminate()
check(proc.wait() == 0, "pglens did not exit 0 on SIGTERM")

if failures:
    for name in ("debian", "debian-user", "routes"):
        path = os.path.join(WORK, name + ".log")
        if os.path.exists(path):
            print(f"---- {name} pglens log (last 20 lines) ----")
            print("".join(open(path).readlines()[-20:]))
    sys.exit(1)
print("PgBouncer migration ok: Debian's default and a config with routes load and serve psql")
