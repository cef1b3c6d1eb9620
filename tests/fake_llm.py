"""A scriptable OpenAI-compatible chat-completions server on loopback, for tests.

The LLM provider is the one external edge we fake, and we fake it at the HTTP layer so the real
``openai`` SDK (retries, timeouts, SSE parsing, error mapping) runs unchanged. Each request takes
the next ``Reply`` from the script (or asks a callable); the client's own ``stream`` flag decides
between a JSON reply and an SSE stream. Every request body is recorded for assertions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Reply:
    text: str = ""
    status: int = 200  # anything but 200: an OpenAI-style error body with this status
    delay_s: float = 0.0  # sleep before answering: longer than the client's timeout makes it time out
    chunks: int = 4  # pieces the text is streamed in
    error_after: int | None = None  # streaming only: send this many pieces, then an error event


def split_text(text: str, pieces: int) -> list[str]:
    """``text`` in up to ``pieces`` parts on word boundaries; joined they give the text back."""
    words = re.findall(r"\S+\s*|\s+", text)
    size = max(1, -(-len(words) // max(1, pieces)))
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


class FakeLLM:
    """``with FakeLLM(Reply("… [1]")) as llm: OpenAI(base_url=llm.url)``; ``llm.requests``: the bodies."""

    def __init__(self, *replies: Reply, responder: Callable[[dict[str, Any]], Reply] | None = None) -> None:
        self._script: deque[Reply] = deque(replies)
        self._responder = responder
        self._closing = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def push(self, *replies: Reply) -> None:
        """Script the replies to the next requests, in order."""
        self._script.extend(replies)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        self.requests.append(body)
        if self._responder is not None:
            return self._responder(body)
        if self._script:
            return self._script.popleft()
        return Reply(status=500, text="fake LLM: no reply scripted for this request")

    def sleep(self, seconds: float) -> None:
        """A delay that ends early when the server closes, so a timed-out handler does not linger."""
        self._closing.wait(seconds)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _handler_for(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            reply = fake.next_reply(body)
            fake.sleep(reply.delay_s)
            try:
                if reply.status != 200:
                    error = {
                        "message": reply.text or "boom",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                    self._json(reply.status, {"error": error})
                elif body.get("stream"):
                    self._stream(reply, body.get("model", "fake"))
                else:
                    self._json(200, _completion(reply.text, body.get("model", "fake")))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): nothing left to tell it

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, reply: Reply, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()  # HTTP/1.0 without a length: the body ends when the connection closes
            pieces = split_text(reply.text, reply.chunks)
            for i, piece in enumerate(pieces):
                if reply.error_after is not None and i == reply.error_after:
                    self._event({"error": {"message": "stream broke", "type": "server_error"}})
                    return
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                self._event(_chunk(model, delta, None))
            self._event(_chunk(model, {}, "stop"))
            self.wfile.write(b"data: [DONE]\n\n")

        def _event(self, payload: dict[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode())
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


def _completion(text: str, model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
    }
