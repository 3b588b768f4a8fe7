"""Serves one fixture day as Hugging Face's /api/daily_papers (page 0; later pages empty)."""
import http.server
import sys
import urllib.parse

BODY = open(sys.argv[2], "rb").read()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        body = BODY if query.get("p", ["0"])[0] == "0" else b"[]"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
