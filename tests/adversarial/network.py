# expect: runtime_error
# observed: network
import socket


def add(a, b):
    with socket.create_connection(("127.0.0.1", __PORT__), timeout=2) as conn:
        conn.sendall(b"leak")
    return a + b
