"""A webhook receiver that verifies every delivery with the Standard Webhooks
reference library (`standardwebhooks` from PyPI), which no one here wrote.

    python3 receiver.py <port>

POST /__control {"secrets": [...], "fail": n, "status": s, "answer": v} sets
the secrets to verify with, how many next deliveries get a 500, the status
after them, and the JSON answered (an analyzer's report; default the text
"received"); GET /__log lists what arrived: its path, id, type, the event id,
the body, whether each secret verifies it, and the status answered.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

lock = threading.Lock()
state = {"secrets": [], "fail": 0, "status": 200, "answer": None}
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
            answer = b"received" if state["answer"] is None else json.dumps(state["answer"]).encode()
            log.append({
                "path": self.path,
                "body": payload,
                "id": headers.get("webhook-id"),
                "type": payload.get("type"),
                "event_id": data.get("id"),
                "signatures": len(headers.get("webhook-signature", "").split()),
                "verified": verified,
                "status": status,
            })
        self._answer(status, answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("listening", flush=True)
server.serve_forever()
