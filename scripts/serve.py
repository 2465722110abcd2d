#!/usr/bin/env python3
"""Serves a folder on 127.0.0.1 for the web page (scripts/web.sh; tests/web/site.test.mjs).

    scripts/serve.py [--port N] [--plain] DIR

By default every response carries Cross-Origin-Opener-Policy: same-origin and
Cross-Origin-Embedder-Policy: require-corp, so the page is cross-origin isolated (wasm threads
need that; `python3 -m http.server` cannot add headers). --plain leaves them out, as a static
host that cannot set headers would (web/coi-serviceworker.js then adds them). The first line on
stdout is the address (port 0 picks a free one).
"""
import argparse
import functools
import http.server
import os
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    # the wasm module's type decides whether the browser can compile it while it downloads
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
    }
    isolate = True

    def end_headers(self):
        if self.isolate:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format, *args):
        if not os.environ.get("QUIET"):
            super().log_message(format, *args)


def main():
    ap = argparse.ArgumentParser(description="serve a folder on 127.0.0.1 with (or, --plain, without) COOP/COEP headers")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--plain", action="store_true", help="no COOP/COEP headers (a plain static host)")
    ap.add_argument("dir")
    a = ap.parse_args()
    if not os.path.isdir(a.dir):
        ap.error(f"no folder {a.dir}")
    Handler.isolate = not a.plain
    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), functools.partial(Handler, directory=a.dir))
    print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
