"""Judge HTTP client against a loopback OpenAI-compatible server: retries, backoff, timeouts, config.

``FakeJudgeServer`` (also used by ``test_judge_run.py``) is a ``http.server`` on 127.0.0.1 in a daemon
thread. It answers ``POST .../chat/completions`` with whatever its ``reply`` callable returns, records
every request, refuses to serve more than ``max_requests`` and shuts itself down after ``lifetime_s``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from vau_r1.judge import JudgeClient, JudgeConfig, JudgeRequestError, MissingAPIKeyError, load_judge_config
from vau_r1.judge.client import parse_retry_after_s
from vau_r1.resources import CONFIG_ROOT

KEY_ENV = "VAU_R1_TEST_JUDGE_KEY"
DUMMY_KEY = "sk-test-dummy-0123"
CONFIG_DIR = CONFIG_ROOT / "judge"

#: (status, headers, body text, delay before answering in seconds)
Reply = tuple[int, dict[str, str], str, float]


def chat_body(content: str) -> str:
    """A minimal chat.completion JSON body whose message is ``content``."""
    return json.dumps({
        "id": "cmpl-test", "object": "chat.completion", "created": 0, "model": "judge-test",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
    })  # fmt: skip


def ok(content: str) -> Reply:
    """HTTP 200 carrying ``content`` as the judge's message."""
    return 200, {}, chat_body(content), 0.0


def error(status: int, headers: dict[str, str] | None = None) -> Reply:
    """An HTTP error with an OpenAI-style error body."""
    return status, headers or {}, json.dumps({"error": {"message": f"status {status}"}}), 0.0


def scores_json(cls: int = 8, km: int = 7, flu: int = 9, inf: int = 6, fac: int = 7, total: int | None = None) -> str:
    """The judge's JSON object (total defaults to the true sum)."""
    total = cls + km + flu + inf + fac if total is None else total
    return json.dumps({
        "classification_score": cls, "key_matching_score": km, "fluency_score": flu,
        "informativeness_score": inf, "factual_score": fac, "total_score": total,
        "comments": {"classification": "right class"},
    })  # fmt: skip


class FakeJudgeServer:
    """Loopback chat-completions server; ``reply(request_json, hit_number) -> Reply`` decides each answer."""

    def __init__(self, reply: Callable[[dict[str, Any], int], Reply], max_requests: int = 100, lifetime_s: float = 60):
        self.reply, self.max_requests = reply, max_requests
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    hit = len(server.requests)
                status, headers, text, delay_s = server.reply(body, hit) if hit <= max_requests else error(503)
                time.sleep(delay_s)
                payload = text.encode()
                try:
                    self.send_response(status)
                    for name, value in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.handle_error = lambda *args: None
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(lifetime_s, self.close)
        self._timer.daemon = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}/v1"

    @property
    def hits(self) -> int:
        return len(self.requests)

    def __enter__(self) -> FakeJudgeServer:
        self._thread.start()
        self._timer.start()
        return self

    def close(self, *exc: object) -> None:
        self._timer.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()

    __exit__ = close


def make_config(base_url: str, **overrides: Any) -> JudgeConfig:
    """Fast test settings: tiny deterministic backoff, short timeout, the dummy-key variable."""
    values = dict(base_url=base_url, model="judge-test", api_key_env=KEY_ENV, timeout_s=2.0, max_retries=2,
                  backoff_base_s=0.001, backoff_max_s=0.01, retry_after_max_s=0.5, jitter=0.0)  # fmt: skip
    return JudgeConfig(**{**values, **overrides})


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, DUMMY_KEY)
    return DUMMY_KEY


MESSAGES = [{"role": "system", "content": "sys"}, {"role": "user", "content": "judge this"}]


def test_success_sends_model_messages_and_key(api_key: str) -> None:
    with FakeJudgeServer(lambda body, hit: ok("fine")) as server:
        client = JudgeClient(make_config(server.base_url, temperature=0.0))
        reply = client.complete(MESSAGES)
    assert (reply.text, reply.attempts, server.hits) == ("fine", 1, 1)
    assert server.requests[0]["model"] == "judge-test" and server.requests[0]["messages"] == MESSAGES
    assert server.requests[0]["temperature"] == 0.0
    assert server.headers[0]["authorization"] == f"Bearer {api_key}"


def test_temperature_none_is_not_sent(api_key: str) -> None:
    # The paper used the server's default temperature: with temperature=None the field is absent.
    with FakeJudgeServer(lambda body, hit: ok("fine")) as server:
        JudgeClient(make_config(server.base_url)).complete(MESSAGES)
    assert "temperature" not in server.requests[0] and "max_tokens" not in server.requests[0]


def test_500_then_success_retries_with_backoff(api_key: str) -> None:
    sleeps: list[float] = []
    with FakeJudgeServer(lambda body, hit: error(500) if hit == 1 else ok("fine")) as server:
        reply = JudgeClient(make_config(server.base_url), sleep=sleeps.append).complete(MESSAGES)
    assert (reply.text, reply.attempts, server.hits) == ("fine", 2, 2)
    assert sleeps == [0.001]


def test_429_honours_retry_after_capped(api_key: str) -> None:
    answers = {1: error(429, {"Retry-After": "0.05"}), 2: error(429, {"Retry-After": "999"})}
    sleeps: list[float] = []
    with FakeJudgeServer(lambda body, hit: answers.get(hit, ok("fine"))) as server:
        reply = JudgeClient(make_config(server.base_url), sleep=sleeps.append).complete(MESSAGES)
    assert (reply.attempts, server.hits) == (3, 3)
    assert sleeps == [0.05, 0.5]  # second Retry-After capped at retry_after_max_s


def test_persistent_500_gives_up_after_max_retries(api_key: str) -> None:
    sleeps: list[float] = []
    with FakeJudgeServer(lambda body, hit: error(500)) as server:
        client = JudgeClient(make_config(server.base_url, max_retries=3), sleep=sleeps.append)
        with pytest.raises(JudgeRequestError) as caught:
            client.complete(MESSAGES)
    assert (caught.value.stage, caught.value.attempts, server.hits) == ("http", 4, 4)
    assert "HTTP 500" in caught.value.reason
    assert sleeps == [0.001, 0.002, 0.004]  # exponential, no jitter


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried(api_key: str, status: int) -> None:
    with FakeJudgeServer(lambda body, hit: error(status)) as server, pytest.raises(JudgeRequestError) as caught:
        JudgeClient(make_config(server.base_url)).complete(MESSAGES)
    assert (caught.value.attempts, server.hits) == (1, 1)
    assert f"HTTP {status}" in caught.value.reason


@pytest.mark.parametrize("status", [408, 409, 503])
def test_retryable_statuses(api_key: str, status: int) -> None:
    with FakeJudgeServer(lambda body, hit: error(status) if hit == 1 else ok("fine")) as server:
        assert JudgeClient(make_config(server.base_url), sleep=lambda s: None).complete(MESSAGES).attempts == 2


def test_timeout_is_retried_then_reported(api_key: str) -> None:
    # The server sleeps 0.5 s; the client waits 0.2 s per request, 2 attempts in all.
    with FakeJudgeServer(lambda body, hit: (*ok("late")[:3], 0.5)) as server:
        client = JudgeClient(make_config(server.base_url, timeout_s=0.2, max_retries=1), sleep=lambda s: None)
        started = time.monotonic()
        with pytest.raises(JudgeRequestError) as caught:
            client.complete(MESSAGES)
        elapsed_s = time.monotonic() - started
    assert (caught.value.stage, caught.value.attempts, server.hits) == ("timeout", 2, 2)
    assert elapsed_s < 2.0


def test_connection_refused_is_bounded(api_key: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    sleeps: list[float] = []
    client = JudgeClient(make_config(f"http://127.0.0.1:{port}/v1", max_retries=2), sleep=sleeps.append)
    with pytest.raises(JudgeRequestError) as caught:
        client.complete(MESSAGES)
    assert (caught.value.stage, caught.value.attempts, client.requests_sent) == ("http", 3, 3)
    assert "connection" in caught.value.reason.lower() and len(sleeps) == 2


def test_reply_without_content_is_an_error(api_key: str) -> None:
    body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []})
    with FakeJudgeServer(lambda b, hit: (200, {}, body, 0.0)) as server, pytest.raises(JudgeRequestError) as caught:
        JudgeClient(make_config(server.base_url)).complete(MESSAGES)
    assert "no choices" in caught.value.reason and caught.value.stage == "reply" and server.hits == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"choices": [{"message": ', "JSONDecodeError"),  # an HTTP 200 cut off (was an uncaught JSONDecodeError)
        ("", "JSONDecodeError"),
        ('{"choices": ' + "[" * 50_000 + "]" * 50_000 + "}", "RecursionError"),  # was an uncaught RecursionError
    ],
)
def test_unreadable_200_body_is_a_reply_error_not_retried(api_key: str, body: str, reason: str) -> None:
    with FakeJudgeServer(lambda b, hit: (200, {}, body, 0.0)) as server, pytest.raises(JudgeRequestError) as caught:
        JudgeClient(make_config(server.base_url)).complete(MESSAGES)
    assert (caught.value.stage, caught.value.attempts, server.hits) == ("reply", 1, 1)
    assert reason in caught.value.reason and len(caught.value.reason) < 400


def test_endpoint_label_drops_credentials() -> None:
    from vau_r1.judge.client import endpoint_label

    assert endpoint_label("https://user:pw@api.example.com/v1?key=sk-1#x") == "https://api.example.com/v1"
    assert endpoint_label("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(MissingAPIKeyError, match=KEY_ENV):
        JudgeClient(make_config("http://127.0.0.1:9/v1"))


def test_key_is_not_in_config_or_its_dict(api_key: str) -> None:
    config = make_config("http://127.0.0.1:9/v1")
    assert api_key not in repr(config) and api_key not in json.dumps(config.to_dict())


@pytest.mark.parametrize(
    ("headers", "expected_s"),
    [
        ({}, None),  # no header
        ({"retry-after": "3"}, 3.0),  # seconds
        ({"retry-after-ms": "1500"}, 1.5),  # OpenAI's millisecond variant wins
        ({"retry-after": "-4"}, 0.0),  # negative clamps to 0
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # HTTP date in the past
        ({"retry-after": "soon"}, None),  # unreadable
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected_s: float | None) -> None:
    assert parse_retry_after_s(headers) == expected_s


def test_jitter_is_seeded_and_bounded(api_key: str) -> None:
    from random import Random

    from vau_r1.judge.client import retry_delay_s

    config = make_config("http://x", jitter=0.5, backoff_base_s=1.0, backoff_max_s=100.0)
    delays = [retry_delay_s(config, k, None, Random(7)) for k in range(3)]
    assert delays == [retry_delay_s(config, k, None, Random(7)) for k in range(3)]
    assert all(2**k <= d <= 1.5 * 2**k for k, d in enumerate(delays))


def test_config_files_load_and_validate() -> None:
    deepseek = load_judge_config(CONFIG_DIR / "deepseek.yaml")
    assert (deepseek.base_url, deepseek.model, deepseek.api_key_env) == (
        "https://api.deepseek.com", "deepseek-chat", "DEEPSEEK_API_KEY")  # fmt: skip
    assert deepseek.prompt_preset == "paper" and deepseek.temperature is None
    with pytest.raises(ValueError, match="base_url"):
        load_judge_config(CONFIG_DIR / "openai_compatible.yaml")
    other = load_judge_config(CONFIG_DIR / "openai_compatible.yaml", base_url="http://127.0.0.1:8000/v1", model="q")
    assert other.model == "q"
    with pytest.raises(ValueError, match="unknown judge keys"):
        load_judge_config(CONFIG_DIR / "deepseek.yaml", api_key="do-not-store")
    with pytest.raises(ValueError, match="concurrency"):
        make_config("http://x", concurrency=0)


@pytest.mark.parametrize("name", ["deepseek.yaml", "openai_compatible.yaml"])
def test_every_config_key_has_a_comment_above(name: str) -> None:
    lines = (CONFIG_DIR / name).read_text().splitlines()
    keys = [i for i, line in enumerate(lines) if line and not line.startswith(("#", " "))]
    assert len(keys) == 15
    assert all(lines[i - 1].startswith("#") for i in keys), name
