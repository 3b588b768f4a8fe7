"""Serves fixture days as Hugging Face's /api/daily_papers: page 0 of each request is the
next file given (one file: always that day), later pages are empty.

    python3 bench/fixture_server.py PORT DAY.json [DAY.json ...]"""
import http.server
import itertools
import sys
import threading
import urllib.parse

BODIES = itertools.cycle([open(path, "rb").read() for path in sys.argv[2:]])
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        body = b"[]"
        if query.get("p", ["0"])[0] == "0":
            with LOCK:
                body = next(BODIES)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
