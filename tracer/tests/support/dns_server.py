"""A DNS server for tracer's kernel tests, over UDP and TCP on port 53 of
HOST, run in the test's network namespace. What it answers depends on the
name asked:

  nx*      NXDOMAIN            fail*    SERVFAIL
  silent*  no answer at all    slow*    NOERROR after 300 ms
  other    NOERROR: A 10.9.9.9, AAAA fd00::9 (other types: no records)

  dns_server.py HOST

It prints "ready" once both sockets listen, then one line per query
received: "udp|tcp QTYPE NAME".
"""
import select
import socket
import struct
import sys
import threading
import time


def parse_question(msg):
    """The question's name (dotted, lower case), type, and the offset past it."""
    labels = []
    at = 12
    while True:
        n = msg[at]
        if n == 0:
            at += 1
            break
        labels.append(msg[at + 1 : at + 1 + n].decode("ascii", "replace"))
        at += 1 + n
    qtype = struct.unpack("!H", msg[at : at + 2])[0]
    return ".".join(labels).lower(), qtype, at + 4


def answer(msg, transport):
    """The answer to query `msg`, or None for no answer."""
    name, qtype, end = parse_question(msg)
    print(f"{transport} {qtype} {name}", flush=True)
    first = name.split(".")[0]
    if first.startswith("silent"):
        return None
    if first.startswith("slow"):
        time.sleep(0.3)
    (qid,) = struct.unpack("!H", msg[:2])
    rcode = 0
    records = []
    if first.startswith("nx"):
        rcode = 3
    elif first.startswith("fail"):
        rcode = 2
    elif qtype == 1:
        records.append(struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([10, 9, 9, 9]))
    elif qtype == 28:
        addr = socket.inet_pton(socket.AF_INET6, "fd00::9")
        records.append(struct.pack("!HHHIH", 0xC00C, 28, 1, 60, 16) + addr)
    flags = 0x8000 | 0x0400 | 0x0100 | 0x0080 | rcode
    header = struct.pack("!HHHHHH", qid, flags, 1, len(records), 0, 0)
    return header + msg[12:end] + b"".join(records)


def serve_udp(sock):
    while True:
        msg, peer = sock.recvfrom(4096)
        reply = answer(msg, "udp")
        if reply is not None:
            sock.sendto(reply, peer)


def serve_tcp_client(conn):
    with conn:
        while True:
            head = conn.recv(2, socket.MSG_WAITALL)
            if len(head) < 2:
                return
            (n,) = struct.unpack("!H", head)
            msg = conn.recv(n, socket.MSG_WAITALL)
            reply = answer(msg, "tcp")
            if reply is not None:
                conn.sendall(struct.pack("!H", len(reply)) + reply)


def serve_tcp(sock):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp_client, args=(conn,), daemon=True).start()


def main():
    host = sys.argv[1]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    udp.bind((host, 53))
    tcp = socket.socket(family, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((host, 53))
    tcp.listen(64)
    threading.Thread(target=serve_udp, args=(udp,), daemon=True).start()
    threading.Thread(target=serve_tcp, args=(tcp,), daemon=True).start()
    print("ready", flush=True)
    # Until the test closes stdin.
    while sys.stdin.read(1):
        pass


if __name__ == "__main__":
    main()
