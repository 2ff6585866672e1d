#!/usr/bin/env python3
"""A loopback HTTP server that sends files at a set rate, for scripts/bench/streamed-apply.sh.

GET /<bytes per second>/<file> sends <file> from DIR, 16 KiB at a time, each chunk no earlier than the
rate allows since the first byte (0: as fast as the socket takes them). curl's own --limit-rate ran at
about twice the rate asked here, so the pacing is done on the sending side.

    throttled-http.py DIR PORT
"""
import http.server
import os
import sys
import time

CHUNK = 16 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.strip("/").split("/", 1)
        if len(parts) != 2 or not parts[0].isdigit() or "/" in parts[1] or parts[1].startswith("."):
            self.send_error(404)
            return
        rate, path = int(parts[0]), os.path.join(self.server.directory, parts[1])
        if not os.path.isfile(path):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.end_headers()
        sent, start = 0, time.monotonic()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                if rate > 0:
                    due = start + sent / rate
                    now = time.monotonic()
                    if due > now:
                        time.sleep(due - now)
                self.wfile.write(chunk)
                sent += len(chunk)

    def log_message(self, format, *args):
        pass


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
    server.directory = sys.argv[1]
    server.serve_forever()


if __name__ == "__main__":
    main()
