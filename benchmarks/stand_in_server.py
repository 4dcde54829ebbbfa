#!/usr/bin/python3
"""A stand-in for jupyterhub-singleuser in the scale benchmarks, where hundreds of
JupyterLab servers (~145 MB and 2-3 CPU-seconds each to start) do not fit one machine.

It answers the hub like the real server, for what the hub and proxy see:
  - listens where it is told: `--ServerApp.sock=PATH` (hpchub's login-node launcher), or the
    host and port of JUPYTERHUB_SERVICE_URL (hpchub's batch launcher), a `--port=N` argument
    overriding the port (batchspawner's and sshspawner's way);
  - answers every GET under its prefix, after checking the request's token with the hub's
    API (`GET $JUPYTERHUB_API_URL/user`), as the real server's HubAuth does - with no cache,
    so an answer proves the hub and the way back to it work at that moment;
  - 403 for a token the hub refuses, 503 while the hub cannot be reached.
Standard library only, Python 3.6+, like hpchub's launchers (it runs on the nodes).
"""

import http.server
import json
import os
import socket
import socketserver
import sys
import urllib.error
import urllib.parse
import urllib.request

API_URL = os.environ.get("JUPYTERHUB_API_URL", "").rstrip("/")


def hub_user(token):
    """The hub's answer for this token: (status, user name or None)."""
    request = urllib.request.Request(API_URL + "/user", headers={"Authorization": "token " + token})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return 200, json.loads(response.read().decode()).get("name")
    except urllib.error.HTTPError as error:
        return (403 if error.code in (401, 403, 404) else 503), None
    except OSError:
        return 503, None


class Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        header = self.headers.get("Authorization", "")
        token = header.split(None, 1)[1] if header.lower().startswith("token ") else ""
        status, user = hub_user(token) if token else (403, None)
        body = json.dumps({"stand_in": True, "hub_user": user, "path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "local"  # a Unix socket has no client address

    def log_message(self, *args):
        pass


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main(argv):
    sock = next((a.split("=", 1)[1] for a in argv if a.startswith("--ServerApp.sock=")), None)
    if sock:
        server = UnixServer(sock, Answer)
        os.chmod(sock, 0o600)
    else:
        url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
        port = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--port=")), url.port)
        TCPServer.address_family = socket.AF_INET6 if ":" in (url.hostname or "") else socket.AF_INET
        server = TCPServer((url.hostname or "127.0.0.1", port), Answer)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
