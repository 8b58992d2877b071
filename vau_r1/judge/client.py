"""OpenAI-compatible chat client for the judge, with bounded, explicit retries.

The ``openai`` package sends the requests with its own retries switched off (``max_retries=0``); the
retry policy lives here so that it is visible and testable:

* retried: connection errors, timeouts, HTTP 408/409/429 and 5xx — at most ``max_retries`` times;
* not retried: any other 4xx (a bad request or a wrong key will not heal by waiting), and a reply that
  came but cannot be read (an HTTP 200 whose body is not JSON or is nested too deeply, no
  ``choices[0].message.content``): stage ``reply``; the row fails and a later run asks again;
* delay before retry ``k`` (0-based): ``Retry-After`` (or ``retry-after-ms``) when the server sends it,
  capped at ``retry_after_max_s``; otherwise ``min(backoff_base_s * 2**k, backoff_max_s)`` stretched by
  up to ``jitter`` (a fraction, drawn from a seeded RNG).

The API key is read from the environment variable *named* by ``api_key_env``; it is handed to the
HTTP client only and never stored in the config, logged or written to the cache.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: 4xx statuses worth retrying (request timeout, conflict, rate limit); every 5xx is retried too.
RETRYABLE_4XX = frozenset({408, 409, 429})
_ERROR_BODY_CHARS = 300


@dataclass(frozen=True)
class JudgeConfig:
    """Judge endpoint and policy; the keys of ``vau_r1/configs/judge/*.yaml`` (documented there).

    Attributes:
        base_url: OpenAI-compatible API root (``https://api.deepseek.com``, ``http://127.0.0.1:8000/v1``).
        model: model name sent with each request (``deepseek-chat``).
        api_key_env: NAME of the environment variable holding the key (the key itself is never stored).
        temperature: sampling temperature; ``None`` sends none (server default, as in the paper).
        max_tokens: reply length cap; ``None`` sends none.
        timeout_s: per-request timeout in seconds.
        max_retries: retries after the first attempt (0 = one attempt only).
        backoff_base_s, backoff_max_s: exponential backoff start and cap, seconds.
        retry_after_max_s: cap on a server's ``Retry-After``, seconds.
        jitter: backoff stretch fraction in [0, 1]; 0 makes delays deterministic.
        seed: seed of the jitter RNG.
        concurrency: parallel requests (threads), >= 1.
        prompt_preset: judge prompt preset (``paper`` / ``clean``, see :mod:`vau_r1.judge.prompt`).
        max_row_attempts: runs in which a row may fail before later runs stop asking about it.
    """

    base_url: str
    model: str
    api_key_env: str = "DEEPSEEK_API_KEY"
    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_base_s: float = 2.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 60.0
    jitter: float = 0.1
    seed: int = 0
    concurrency: int = 1
    prompt_preset: str = "paper"
    max_row_attempts: int = 3

    def __post_init__(self) -> None:
        for key in ("base_url", "model", "api_key_env"):
            if not isinstance(getattr(self, key), str) or getattr(self, key) in ("", "???"):
                raise ValueError(f"judge.{key} must be set (got {getattr(self, key)!r}); see "
                                 "vau_r1/configs/judge/*.yaml")
        checks = {
            "timeout_s": self.timeout_s > 0, "max_retries": self.max_retries >= 0,
            "backoff_base_s": self.backoff_base_s >= 0, "backoff_max_s": self.backoff_max_s >= 0,
            "retry_after_max_s": self.retry_after_max_s >= 0, "jitter": 0 <= self.jitter <= 1,
            "concurrency": self.concurrency >= 1, "max_row_attempts": self.max_row_attempts >= 1,
        }  # fmt: skip
        for key, ok in checks.items():
            if not ok:
                raise ValueError(f"judge.{key}={getattr(self, key)!r} is out of range; see the JudgeConfig docstring")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the settings (contains no secret)."""
        return asdict(self)


def load_judge_config(path: str | Path, **overrides: Any) -> JudgeConfig:
    """Read ``vau_r1/configs/judge/<name>.yaml`` (plus keyword overrides) into a validated :class:`JudgeConfig`.

    Raises:
        ValueError: a required key is still ``???`` or the file has keys :class:`JudgeConfig` does not know.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue

    merged = OmegaConf.merge(OmegaConf.load(path), overrides)
    try:
        values = OmegaConf.to_container(merged, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        message = f"{path}: required key {error.full_key!r} is '???'; set it in the file or override it"
        raise ValueError(message) from error
    known = {f.name for f in fields(JudgeConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown judge keys {unknown}; expected a subset of {sorted(known)}")
    return JudgeConfig(**values)


class MissingAPIKeyError(RuntimeError):
    """The environment variable named by ``JudgeConfig.api_key_env`` is unset or empty."""


class JudgeRequestError(RuntimeError):
    """A judge request failed for good.

    Attributes:
        stage: ``"timeout"`` when the last attempt timed out, ``"reply"`` when a reply came but could not
            be read, else ``"http"``.
        reason: human-readable cause (status code and body excerpt, or the connection error).
        attempts: number of requests sent for this call.
    """

    def __init__(self, stage: str, reason: str, attempts: int) -> None:
        super().__init__(f"{stage}: {reason} (after {attempts} attempt(s))")
        self.stage, self.reason, self.attempts = stage, reason, attempts


@dataclass(frozen=True)
class Completion:
    """A judge reply: the message text and the number of requests it took (1 = no retry)."""

    text: str
    attempts: int


def parse_retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds asked for by ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date); ``None`` if absent.

    Example:
        >>> parse_retry_after_s({"retry-after": "2"}), parse_retry_after_s({"retry-after-ms": "250"})
        (2.0, 0.25)
    """
    if not headers:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            pass
    date = email.utils.parsedate_tz(headers.get("retry-after") or "")
    return None if date is None else max(0.0, email.utils.mktime_tz(date) - time.time())


def retry_delay_s(config: JudgeConfig, retry_index: int, retry_after_s: float | None, rng: random.Random) -> float:
    """Seconds to wait before retry ``retry_index`` (0-based), following the module's policy.

    Example:
        >>> cfg = JudgeConfig(base_url="http://x", model="m", backoff_base_s=1.0, backoff_max_s=5.0, jitter=0.0)
        >>> [retry_delay_s(cfg, k, None, random.Random(0)) for k in range(4)], retry_delay_s(cfg, 0, 99.0, None)
        ([1.0, 2.0, 4.0, 5.0], 60.0)
    """
    if retry_after_s is not None:
        return min(retry_after_s, config.retry_after_max_s)
    delay_s = min(config.backoff_base_s * 2**retry_index, config.backoff_max_s)
    return delay_s * (1.0 + config.jitter * rng.random()) if config.jitter > 0 else delay_s


def endpoint_label(base_url: str) -> str:
    """``base_url`` without user info, query or fragment (safe to write into reports and caches).

    Example:
        >>> endpoint_label("https://user:secret@api.example.com:8443/v1?key=abc")
        'https://api.example.com:8443/v1'
    """
    parts = urllib.parse.urlsplit(base_url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def read_api_key(env_name: str) -> str:
    """The API key from environment variable ``env_name``; a clear error if it is unset or empty."""
    key = os.environ.get(env_name, "").strip()
    if not key:
        raise MissingAPIKeyError(
            f"Judge API key missing: environment variable {env_name} is unset or empty. "
            f"Export it (export {env_name}=...) or point judge.api_key_env at the variable that holds the key."
        )
    return key


class JudgeClient:
    """Sends chat requests to the judge endpoint; thread-safe (one HTTP client shared by all threads).

    Args:
        config: endpoint, model, timeouts and retry policy.
        sleep: called with the delay in seconds between attempts (tests pass a recorder).
    """

    def __init__(self, config: JudgeConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        import openai  # deferred: the package is large and only needed when a judge actually runs

        self.config = config
        self._openai = openai
        self._client = openai.OpenAI(
            api_key=read_api_key(config.api_key_env),
            base_url=config.base_url,
            timeout=config.timeout_s,
            max_retries=0,
        )
        self._sleep = sleep
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self.requests_sent = 0

    def _request_kwargs(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.config.model, "messages": messages}
        if self.config.temperature is not None:
            kwargs["temperature"] = self.config.temperature
        if self.config.max_tokens is not None:
            kwargs["max_tokens"] = self.config.max_tokens
        return kwargs

    def _classify(self, error: Exception) -> tuple[str, str, bool, float | None]:
        """(stage, reason, retryable, retry_after_s) for an exception raised by one request."""
        if isinstance(error, self._openai.APITimeoutError):
            return "timeout", f"no reply within timeout_s={self.config.timeout_s}", True, None
        if isinstance(error, self._openai.APIConnectionError):
            return "http", f"connection error: {error.__cause__ or error}", True, None
        if isinstance(error, self._openai.APIStatusError):
            status = error.status_code
            retryable = status in RETRYABLE_4XX or status >= 500
            reason = f"HTTP {status}: {str(error.message)[:_ERROR_BODY_CHARS]}"
            return "http", reason, retryable, parse_retry_after_s(error.response.headers)
        return "http", f"{type(error).__name__}: {str(error)[:_ERROR_BODY_CHARS]}", False, None

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        """Send ``messages`` and return the reply text, retrying as the module docstring says.

        Raises:
            JudgeRequestError: every allowed attempt failed, or the error was not retryable, or the
                reply had no message content.
        """
        kwargs = self._request_kwargs(messages)
        for attempt in range(1, self.config.max_retries + 2):
            with self._lock:
                self.requests_sent += 1
            try:
                response = self._client.chat.completions.create(**kwargs)
            except self._openai.OpenAIError as error:
                stage, reason, retryable, retry_after_s = self._classify(error)
                if not retryable or attempt > self.config.max_retries:
                    raise JudgeRequestError(stage, reason, attempt) from error
                with self._lock:
                    delay_s = retry_delay_s(self.config, attempt - 1, retry_after_s, self._rng)
                logger.warning("judge request failed (%s); retry %d/%d in %.2f s",
                               reason, attempt, self.config.max_retries, delay_s)  # fmt: skip
                self._sleep(delay_s)
                continue
            except (ValueError, RecursionError) as error:  # a 200 whose body is not JSON, or nested too deeply
                reason = f"unreadable reply body ({type(error).__name__}: {str(error)[:_ERROR_BODY_CHARS]})"
                raise JudgeRequestError("reply", reason, attempt) from error
            text = _message_text(response)
            if text is None:
                raise JudgeRequestError("reply", "reply has no choices[0].message.content", attempt)
            return Completion(text=text, attempts=attempt)
        raise AssertionError("unreachable: the loop returns or raises")


def _message_text(response: Any) -> str | None:
    """``response.choices[0].message.content`` or ``None`` when the reply lacks it."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None
