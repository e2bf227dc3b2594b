#!/usr/bin/env python3
"""A reverse proxy that adds one header to every request: the MCP conformance suite cannot send
an API key, and Membrain refuses every MCP request without one.

    key_proxy.py UPSTREAM_PORT HEADER_NAME HEADER_VALUE

Listens on a free port of 127.0.0.1 and prints it on the first line of stdout. Everything else
passes through unchanged, the Host and Origin headers included (the suite's DNS-rebinding
scenario sends foreign ones and expects the server to refuse them), and response bodies are
streamed as they arrive (server-sent events too). Each response closes its connection.
"""

import http.client
import http.server
import socketserver
import sys

UPSTREAM_PORT = int(sys.argv[1])
HEADER_NAME = sys.argv[2]
HEADER_VALUE = sys.argv[3]
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection("127.0.0.1", UPSTREAM_PORT, timeout=120)
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                upstream.putheader(name, value)
        upstream.putheader(HEADER_NAME, HEADER_VALUE)
        if body is not None:
            upstream.putheader("Content-Length", str(len(body)))
        upstream.endheaders(body)
        response = upstream.getresponse()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        while True:
            chunk = response.read1(65536)
            if not chunk:
                break
            self.wfile.write(chunk)
            self.wfile.flush()
        upstream.close()

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = do_HEAD = forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    server = Server(("127.0.0.1", 0), Proxy)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
