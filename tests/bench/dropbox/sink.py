#!/usr/bin/env python3
"""The loopback ceiling for tests/bench/dropbox/run.sh: a trivial HTTP sink
that reads each request's body (Content-Length) in 1 MiB recv_into calls,
throws it away and answers 202. One connection at a time; standard library
only.

    sink.py PORT
"""
import socket
import sys


def serve(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while True:
        conn, _ = ls.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                head += chunk
            header, _, rest = head.partition(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            left = length - len(rest)
            while left > 0:
                n = conn.recv_into(view, min(left, len(buf)))
                if n == 0:
                    break
                left -= n
            body = b'{"status":"queued"}'
            conn.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % len(body) + body)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
