"""TCP peer for tracer's kernel tests: a listener or a client in its own process,
driven line by line over stdin so the test controls when traffic happens.

  peer.py listen HOST          print the port, accept and drain until stdin closes
  peer.py connect HOST PORT    on each stdin line "go": connect, send, print the
                               local port, close; exit when stdin closes
"""
import select
import socket
import sys


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listen(host):
    srv = socket.socket(family(host), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, 0))
    srv.listen(128)
    print(srv.getsockname()[1], flush=True)
    conns = []
    while True:
        ready, _, _ = select.select([srv, sys.stdin] + conns, [], [], 60)
        if not ready:
            return
        for r in ready:
            if r is sys.stdin:
                if not sys.stdin.readline():
                    return
            elif r is srv:
                conns.append(srv.accept()[0])
            else:
                if not r.recv(4096):
                    r.close()
                    conns.remove(r)


def connect(host, port):
    for line in sys.stdin:
        if line.strip() != "go":
            continue
        c = socket.socket(family(host), socket.SOCK_STREAM)
        try:
            c.connect((host, int(port)))
            c.sendall(b"hello")
            print(c.getsockname()[1], flush=True)
        except OSError as e:
            print("error", e.errno, flush=True)
        finally:
            c.close()


if __name__ == "__main__":
    {"listen": listen, "connect": connect}[sys.argv[1]](*sys.argv[2:])
