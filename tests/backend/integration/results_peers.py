"""The hospital's side of result write-back, as real local servers: an MLLP listener and a FHIR server.

    with FakeMllpReceiver() as his:          # answers AA with MSA-2 = the message's MSH-10
        his.plan("AE", "AR", "drop", "AA")   # the next answers, in order; then AA again
        his.messages[-1]                     # the bytes of each message received
    with FakeFhirServer() as fhir:
        fhir.plan(422, 503)                  # 422 with an OperationOutcome, 503, then 200 again
        fhir.requests[-1].json               # the Bundle; .headers

The MLLP peer frames as HL7's MLLP does (0x0b … 0x1c 0x0d) and writes ACKs with ERR as a receiving engine
would; "drop" reads the message and closes the connection without an answer. The FHIR server answers
a transaction with a transaction-response Bundle (201 per entry), as FHIR R4's http page describes.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

START, END = b"\x0b", b"\x1c\x0d"


class FakeMllpReceiver:
    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)  # so the serving thread sees the stop flag
        self.port = self._server.getsockname()[1]
        self.messages: list[bytes] = []
        self._plan: deque[str] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeMllpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(5)

    def plan(self, *answers: str) -> None:
        self._plan.extend(answers)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                self._connection(conn)

    def _connection(self, conn: socket.socket) -> None:
        pending = b""
        conn.settimeout(5)
        while True:
            while END not in pending:
                try:
                    chunk = conn.recv(65536)
                except (TimeoutError, OSError):
                    return
                if not chunk:
                    return
                pending += chunk
            frame, _, pending = pending.partition(END)
            message = frame.lstrip(START)
            self.messages.append(message)
            answer = self._plan.popleft() if self._plan else "AA"
            if answer == "drop":
                return
            conn.sendall(START + self._ack(message, answer) + END)

    @staticmethod
    def _ack(message: bytes, code: str) -> bytes:
        msh = message.split(b"\r", 1)[0].split(b"|")
        control = msh[9] if len(msh) > 9 else b""
        head = b"MSH|^~\\&|HIS|HOSP|CARELOOP|CARELOOP|20261207120000||ACK^R01^ACK|A" + control + b"|P|2.5.1"
        note = b"" if code == "AA" else b"Patient not found"
        lines = [head, b"MSA|" + code.encode() + b"|" + control + b"|" + note]
        if code != "AA":
            lines.append(b"ERR||PID^1^3|204^Unknown key identifier^HL70357|E||||No patient with this MRN")
        return b"\r".join(lines) + b"\r"


@dataclass
class FhirRequest:
    path: str
    headers: dict[str, str]
    json: Any


class FakeFhirServer:
    def __init__(self) -> None:
        self.requests: list[FhirRequest] = []
        self._plan: deque[int] = deque()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.requests.append(FhirRequest(self.path, dict(self.headers), json.loads(body or b"null")))
                status = fake._plan.popleft() if fake._plan else 200
                if status == 200:
                    entries = [{"response": {"status": "201 Created", "location": f"X/{i}/_history/1"}}
                               for i, _ in enumerate(fake.requests[-1].json.get("entry", []))]  # fmt: skip
                    reply: dict[str, Any] = {
                        "resourceType": "Bundle",
                        "type": "transaction-response",
                        "entry": entries,
                    }
                else:
                    reply = {"resourceType": "OperationOutcome", "issue": [
                        {"severity": "error", "code": "processing", "diagnostics": f"refused with {status}: "
                         "Patient identifier not known"}]}  # fmt: skip
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/fhir/R4"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeFhirServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def plan(self, *statuses: int) -> None:
        self._plan.extend(statuses)
