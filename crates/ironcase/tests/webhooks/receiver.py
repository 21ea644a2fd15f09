"""A webhook receiver that verifies every delivery with the Standard Webhooks
reference library (`standardwebhooks` from PyPI), which no one here wrote.

    python3 receiver.py <port>

POST /__control {"secrets": [...], "fail": n, "status": s} sets the secrets
to verify with, how many next deliveries get a 500, and the status after
them; GET /__log lists what arrived: id, type, the event id, whether each
secret verifies it, and the status answered.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

lock = threading.Lock()
state = {"secrets": [], "fail": 0, "status": 200}
log = []


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/__log":
            return self._answer(404)
        with lock:
            body = json.dumps(log).encode()
        self._answer(200, body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/__control":
            with lock:
                state.update(json.loads(body))
            return self._answer(204)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with lock:
            verified = []
            for secret in state["secrets"]:
                try:
                    Webhook(secret).verify(body, headers)
                    verified.append(True)
                except Exception:
                    verified.append(False)
            if state["fail"] > 0:
                state["fail"] -= 1
                status = 500
            else:
                status = state["status"]
            payload = json.loads(body)
            data = payload.get("data") or {}
            log.append({
                "id": headers.get("webhook-id"),
                "type": payload.get("type"),
                "event_id": data.get("id"),
                "signatures": len(headers.get("webhook-signature", "").split()),
                "verified": verified,
                "status": status,
            })
        self._answer(status, b"received")

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("listening", flush=True)
server.serve_forever()
