"""TCP peer for tracer's kernel tests: a listener or a client in its own process,
driven line by line over stdin so the test controls when traffic happens.

  peer.py listen HOST [drain|leak|reuseport] [PORT]
                               print the port, accept and drain until stdin closes
                               (leak: never read or close accepted connections, so
                               they sit in CLOSE_WAIT once clients close; reuseport:
                               drain, as a member of a SO_REUSEPORT group); on PORT
                               when given, else on a free one; on the stdin line
                               "count", print how many connections it accepted
  peer.py connect HOST PORT [nb|linger|hold|abandon] [LOCAL_PORT]
                               on each stdin line "go": connect (non-blocking with
                               nb), send, print the local port (or "error ERRNO"),
                               then close (with SO_LINGER {1, 0} for linger; hold
                               keeps the connection and sends on each later "go");
                               abandon gives a non-blocking connect 300 ms, as a
                               dial deadline does, then closes it and prints
                               "abandoned" (or the port, if it connected); from
                               LOCAL_PORT when given
  peer.py emfile LIMIT         on "go": lower RLIMIT_NOFILE to LIMIT, open sockets until
                               that fails, print "error ERRNO COUNT", wait for EOF
  peer.py open HOST PORT COUNT on "go": open COUNT connections and keep them, print
                               COUNT, wait for EOF
  peer.py flood HOST PORT      on "go": connect, write without blocking until the
                               socket takes no more, print the bytes written, keep
                               the connection until EOF, then reset it
"""
import errno
import os
import resource
import select
import socket
import struct
import sys


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listen(host, how="drain", port=0):
    srv = socket.socket(family(host), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if how == "reuseport":
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    srv.bind((host, int(port)))
    if how == "stuck":
        # Backlog 1 and never accepting: the accept queue fills at two and
        # the kernel drops further handshakes (ListenOverflows).
        srv.listen(1)
        print(srv.getsockname()[1], flush=True)
        sys.stdin.read()
        return
    srv.listen(128)
    print(srv.getsockname()[1], flush=True)
    conns = []
    leaked = []
    accepted = 0
    while True:
        # No idle timeout: a slow (emulated) machine may leave the listener
        # alone for minutes; it ends when the test closes its stdin.
        ready, _, _ = select.select([srv, sys.stdin] + conns, [], [])
        for r in ready:
            if r is sys.stdin:
                line = sys.stdin.readline()
                if not line:
                    return
                if line.strip() == "count":
                    print(accepted, flush=True)
            elif r is srv:
                conn = srv.accept()[0]
                accepted += 1
                if how == "leak":
                    leaked.append(conn)
                else:
                    conns.append(conn)
            else:
                try:
                    data = r.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    r.close()
                    conns.remove(r)


def connect_nonblocking(c, addr):
    c.setblocking(False)
    err = c.connect_ex(addr)
    if err not in (0, errno.EINPROGRESS):
        raise OSError(err, os.strerror(err))
    select.select([], [c], [], 30)
    err = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))
    c.setblocking(True)


def connect(host, port, how="plain", local_port=None):
    held = None
    for line in sys.stdin:
        if line.strip() != "go":
            continue
        if held is not None:
            # Less than one loopback MSS: each retransmitted skb is one
            # segment, so retransmit events and TcpRetransSegs count alike.
            held.sendall(b"x" * 16384)
            print(held.getsockname()[1], flush=True)
            continue
        c = socket.socket(family(host), socket.SOCK_STREAM)
        if local_port is not None:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            c.bind(("", int(local_port)))
        if how == "abandon":
            c.setblocking(False)
            c.connect_ex((host, int(port)))
            _, ready, _ = select.select([], [c], [], 0.3)
            print(c.getsockname()[1] if ready else "abandoned", flush=True)
            c.close()
            continue
        try:
            if how == "nb":
                connect_nonblocking(c, (host, int(port)))
            else:
                c.connect((host, int(port)))
            c.sendall(b"hello")
            print(c.getsockname()[1], flush=True)
            if how == "hold":
                held = c
                continue
            if how == "linger":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError as e:
            print("error", e.errno, flush=True)
        if held is not c:
            c.close()


def emfile(limit):
    sys.stdin.readline()
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limit), int(limit)))
    socks = []
    try:
        while True:
            socks.append(socket.socket())
    except OSError as e:
        print("error", e.errno, len(socks), flush=True)
    sys.stdin.read()


def burst(host, port, count):
    """On each line: start `count` non-blocking connects at once; on
    `close`, close them all."""
    socks = []
    for line in sys.stdin:
        if line.strip() == "close":
            for s in socks:
                s.close()
            socks = []
            print("closed", flush=True)
            continue
        for _ in range(int(count)):
            s = socket.socket(family(host), socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((host, int(port)))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, os.strerror(err))
            socks.append(s)
        print(len(socks), flush=True)


def churn(host, port, count):
    """On each line: `count` connects, each closed at once."""
    for _ in sys.stdin:
        for _ in range(int(count)):
            socket.create_connection((host, int(port))).close()
        print(count, flush=True)


def open_many(host, port, count):
    sys.stdin.readline()
    conns = [socket.create_connection((host, int(port))) for _ in range(int(count))]
    print(len(conns), flush=True)
    sys.stdin.read()


def flood(host, port):
    sys.stdin.readline()
    c = socket.create_connection((host, int(port)))
    c.setblocking(False)
    sent = 0
    while True:
        try:
            sent += c.send(b"x" * 65536)
        except BlockingIOError:
            # The peer's window may still open a little: wait a moment and
            # stop once it takes nothing more.
            if not select.select([], [c], [], 0.5)[1]:
                break
    print(sent, flush=True)
    sys.stdin.read()
    # Abort: a close would leave an orphan probing the zero window.
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


if __name__ == "__main__":
    {
        "listen": listen,
        "connect": connect,
        "emfile": emfile,
        "open": open_many,
        "burst": burst,
        "churn": churn,
        "flood": flood,
    }[sys.argv[1]](
        *sys.argv[2:]
    )
