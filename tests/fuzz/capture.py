#!/usr/bin/python3
"""Records real exchanges for the fuzzers' seed corpus: a relay between a client and Postgres that
writes what each side sent, in order, as records of <direction byte 'C' or 'S'><u16 length><bytes>
(tests/fuzz/README.md). One file per client connection in OUT_DIR.

    capture.py LISTEN_PORT POSTGRES_PORT OUT_DIR [NAME]
"""
import os
import select
import socket
import struct
import sys
import threading

listen_port, pg_port, out_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
name = sys.argv[4] if len(sys.argv) > 4 else "capture"
os.makedirs(out_dir, exist_ok=True)


def relay(client, n):
    server = socket.create_connection(("127.0.0.1", pg_port))
    with open(os.path.join(out_dir, f"{name}-{n:03d}.bin"), "wb") as out:
        peers = {client: (server, b"C"), server: (client, b"S")}
        while True:
            ready, _, _ = select.select(list(peers), [], [], 30)
            if not ready:
                break
            done = False
            for s in ready:
                data = s.recv(65535)
                if not data:
                    done = True
                    break
                to, tag = peers[s]
                to.sendall(data)
                out.write(tag + struct.pack(">H", len(data)) + data)
            if done:
                break
    client.close()
    server.close()


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", listen_port))
listener.listen(64)
count = 0
while True:
    conn, _ = listener.accept()
    count += 1
    threading.Thread(target=relay, args=(conn, count), daemon=True).start()
