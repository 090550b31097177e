"""An HTTP proxy on 127.0.0.1 in front of an AWS endpoint that counts write requests and can "die" after the N-th.

Each request is classified by its API action: query protocol (EC2, IAM, STS, ...) by ``Action=`` in the form body,
JSON protocol (KMS, ...) by the ``X-Amz-Target`` header, REST (EKS, S3) by the HTTP method. ``Describe*``,
``List*`` and ``Get*`` actions and GET/HEAD REST requests are reads; everything else is a write.

With ``die_after = N`` the first N writes (and the reads before the next write) are forwarded; the next write and
every later request, read or write, are answered with a TCP reset (the socket is closed without a response), as an
endpoint that died. ``die_after = None`` forwards everything (the endpoint is back).
"""

import http.client
import http.server
import socket
import struct
import threading
import urllib.parse

READ_PREFIXES = ("Describe", "List", "Get")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}


def classify(method, headers, body):
    """(action, is_write) of one AWS request."""
    target = headers.get("X-Amz-Target")
    if target:
        action = target.rsplit(".", 1)[-1]
        return action, not action.startswith(READ_PREFIXES)
    ctype = headers.get("Content-Type", "")
    if method == "POST" and "x-www-form-urlencoded" in ctype:
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        if action:
            return action, not action.startswith(READ_PREFIXES)
    return method, method not in ("GET", "HEAD", "OPTIONS")


class FaultProxy:
    """``with FaultProxy(upstream) as proxy``: ``proxy.endpoint``, ``proxy.writes`` (actions forwarded),
    ``proxy.reads``, ``proxy.refused`` (requests reset), ``proxy.die_after``; ``reset_counts()``."""

    def __init__(self, upstream):
        parsed = urllib.parse.urlsplit(upstream)
        assert parsed.hostname == "127.0.0.1", upstream
        self.upstream = (parsed.hostname, parsed.port)
        self.lock = threading.Lock()
        self.die_after = None
        self.dead = False
        self.reset_counts()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reset(self):
                # RST instead of FIN: SO_LINGER on, timeout 0
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                try:
                    self.connection.close()
                except OSError:
                    pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action, write = classify(self.command, self.headers, body)
                with proxy.lock:
                    if not proxy.dead and write and proxy.die_after is not None:
                        if len(proxy.writes) >= proxy.die_after:
                            proxy.dead = True
                    if proxy.dead:
                        proxy.refused.append(action)
                        allowed = False
                    else:
                        (proxy.writes if write else proxy.reads).append(action)
                        allowed = True
                if not allowed:
                    return self._reset()
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset_counts(self):
        with self.lock:
            self.writes, self.reads, self.refused = [], [], []

    def arm(self, die_after):
        """Die after ``die_after`` more writes (counts reset); None: forward everything again."""
        with self.lock:
            self.writes, self.reads, self.refused = [], [], []
            self.die_after, self.dead = die_after, False

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
