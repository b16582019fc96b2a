"""A small upstream for the proxy tests (standard library only). Prints its port, then serves:
  any path      -> JSON: method, path, resolved (the path as an upstream that decodes escapes,
                   reads backslashes as slashes and resolves dot segments sees it), headers
                   (lower-cased), length and sum of the body
  /events       -> server-sent events: one event, then (after /release) a second, then closes
  /release      -> lets /events send its second event
  /ws           -> answers a WebSocket upgrade with 101, then echoes raw bytes until closed
"""
import base64
import hashlib
import json
import posixpath
import sys
from urllib.parse import unquote
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

release = threading.Event()


def resolved(path):
    """How a lenient upstream routes (a servlet container, say): `;params` dropped from each
    segment, then decoded, backslashes as slashes, `.`/`..`/`//` resolved."""
    raw = "/".join(segment.split(";", 1)[0] for segment in path.split("?", 1)[0].split("/"))
    p = unquote(raw).replace("\\", "/")
    r = posixpath.normpath(p) if p else "/"
    if r.startswith("//"):
        r = "/" + r.lstrip("/")
    return r + "/" if p.endswith("/") and r != "/" else r


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        length = int(self.headers.get("content-length") or 0)
        data = b""
        while len(data) < length:
            chunk = self.rfile.read(min(65536, length - len(data)))
            if not chunk:
                break
            data += chunk
        return data

    def echo(self):
        data = self.body()
        out = json.dumps({
            "method": self.command,
            "path": self.path,
            "resolved": resolved(self.path),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "length": len(data),
            "sum": sum(data) % 1000003,
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def events(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(b"data: one\n\n")
        self.wfile.flush()
        release.wait(30)
        self.wfile.write(b"data: two\n\n")
        self.wfile.flush()
        self.close_connection = True

    def websocket(self):
        key = self.headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("upgrade", "websocket")
        self.send_header("connection", "Upgrade")
        self.send_header("sec-websocket-accept", accept)
        self.end_headers()
        self.wfile.flush()
        conn = self.connection
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        self.close_connection = True

    def do_GET(self):
        if self.path == "/events":
            return self.events()
        if self.path == "/release":
            release.set()
        if self.path == "/ws" and self.headers.get("upgrade", "").lower() == "websocket":
            return self.websocket()
        self.echo()

    do_POST = do_GET
    do_PUT = do_GET
    do_PATCH = do_GET
    do_DELETE = do_GET


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
