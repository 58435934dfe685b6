# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""A bounded HTTP file server on 127.0.0.1 for download tests.

``LoopbackServer`` serves ``files[path]`` at ``/<mode>/<path>`` (``path``
may hold slashes, e.g. ``mmsegmentation/v0.5/van_3rdparty/x.pth``), in one
of these modes:

* ``good``: the bytes, with ``Range`` support (``206``);
* ``wrong``: other bytes of the same length (reversed);
* ``truncated``: a ``Content-Length`` larger than what is sent, then close;
* ``drop``: close the connection without answering;
* ``flaky``: truncated on the first request for the path, fine after;
* ``html``: ``200 OK`` with an HTML error page (what a proxy, a captive
  portal or a misconfigured mirror returns) instead of the file.

It counts requests per path (``hits``), records ``Range`` headers
(``ranges``), listens on a random port of 127.0.0.1 only and stops by
itself after ``lifetime`` seconds (and on :meth:`close` / leaving a
``with`` block), so a test that hangs or forgets it leaves nothing behind.
"""

import re
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List

#: What ``html`` mode serves.
HTML_PAGE = (
    b'<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n'
    b'<body><h1>Not Found</h1><p>The requested URL was not found on this '
    b'server.</p></body></html>\n'
)
MODES = ('good', 'wrong', 'truncated', 'drop', 'flaky', 'html')


class LoopbackServer:
    """See the module docstring.

    Args:
        lifetime: seconds after which the server shuts itself down.
    """

    def __init__(self, lifetime: float = 300.0) -> None:
        self.files: Dict[str, bytes] = {}
        self.hits: Counter = Counter()
        self.ranges: List[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                server.hits[self.path] += 1
                _, mode, path = self.path.split('/', 2)
                body = server.files.get(path)
                if body is None or mode not in MODES:
                    self.send_error(404)
                    return
                if mode == 'drop':
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if mode == 'html':
                    body = HTML_PAGE
                elif mode == 'wrong':
                    body = bytes(reversed(body))
                start = 0
                header = self.headers.get('Range')
                if header:
                    server.ranges.append(header)
                if header and mode in ('good', 'flaky'):
                    start = int(re.match(r'bytes=(\d+)-', header).group(1))
                    self.send_response(206)
                    self.send_header(
                        'Content-Range',
                        f'bytes {start}-{len(body) - 1}/{len(body)}',
                    )
                else:
                    self.send_response(200)
                self.send_header('Content-Length', str(len(body) - start))
                self.end_headers()
                cut = mode == 'truncated' or (
                    mode == 'flaky' and server.hits[self.path] == 1
                )
                self.wfile.write(body[start : len(body) // 3 if cut else None])
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self._closed = threading.Event()
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True
        )
        self.thread.start()
        self.timer = threading.Timer(lifetime, self.close)
        self.timer.daemon = True
        self.timer.start()

    @property
    def base(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f'http://127.0.0.1:{self.httpd.server_port}'

    def url(self, mode: str, path: str) -> str:
        """The URL of ``files[path]`` served in ``mode``."""
        return f'{self.base}/{mode}/{path}'

    def close(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> 'LoopbackServer':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
