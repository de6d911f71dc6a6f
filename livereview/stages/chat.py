"""One OpenAI-compatible chat-completions client for every stage that asks an LLM.

The classifier, the knowledge backend and scene summaries all ``POST
<base_url>/chat/completions`` (Ollama, the llama.cpp server, vLLM, hosted APIs) with
retries on connection errors, timeouts and 408/429/5xx answers, and read JSON out of the
answer (bare, or inside a Markdown code fence). Servers are named by a spec
``llm:<base_url>:<model>[:<more>]``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

_RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_SPEC = re.compile(r"^llm:(?P<url>https?://[^/\s:]+(?::\d+)?(?:/[^:\s]*)?):(?P<rest>[^\s]+)$")
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


class LLMUnavailableError(RuntimeError):
    """The server could not be reached, timed out, or kept failing after retries."""


class LLMAnswerError(ValueError):
    """The server answered, but not with the JSON asked for."""


def parse_spec(spec: str, example: str = "'llm:http://127.0.0.1:11434/v1:llama3'") -> tuple[str, str]:
    """``(base_url, rest)`` of ``"llm:<base_url>:<rest>"``; ``rest`` is the model and what follows it.

    Raises
    ------
    ValueError
        When ``spec`` does not have that shape (the message quotes ``example``).
    """
    match = _SPEC.match(spec)
    if match is None:
        msg = f"an LLM needs a server URL and a model: pass {example}; got {spec!r}"
        raise ValueError(msg)
    return match["url"].rstrip("/"), match["rest"]


@dataclass(frozen=True)
class ChatServer:
    """An OpenAI-compatible chat-completions server and how to talk to it.

    Parameters
    ----------
    base_url : str
        The API root, e.g. ``http://127.0.0.1:11434/v1``.
    model : str
        The model name the server knows.
    timeout : float
        Seconds to wait for connecting and for each read.
    retries : int
        Extra attempts after a connection error, a timeout or a 408/429/5xx answer.
    backoff : float
        Seconds before the first retry; doubles after each.
    api_key : str, optional
        Sent as a bearer token.
    json_mode : bool
        Ask for ``response_format: json_object``.
    """

    base_url: str
    model: str
    timeout: float = 60.0
    retries: int = 2
    backoff: float = 0.5
    api_key: str | None = None
    json_mode: bool = True

    def client(self) -> httpx.Client:
        """An HTTP client with this server's timeout and key (close it, or use it in a ``with``)."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(timeout=self.timeout, headers=headers)

    def complete(self, client: httpx.Client, messages: list[dict[str, str]]) -> str:
        """POST the chat completion with retries; the answer's message content.

        Raises
        ------
        LLMUnavailableError
            No usable answer after every attempt.
        LLMAnswerError
            An answer that is not a chat completion, or an error status that retrying cannot fix.
        """
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0}
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        url = f"{self.base_url.rstrip('/')}/chat/completions"
        failure = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = client.post(url, json=body)
            except httpx.TimeoutException:
                failure = f"no answer within {self.timeout} s"
                continue
            except httpx.TransportError as error:
                failure = f"{type(error).__name__}: {error}"
                continue
            if response.status_code in _RETRY_STATUSES:
                failure = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                msg = f"HTTP {response.status_code}: {response.text[:200]!r}"
                raise LLMAnswerError(msg)
            try:
                return str(response.json()["choices"][0]["message"]["content"])
            except (ValueError, KeyError, IndexError, TypeError) as error:
                msg = f"not a chat-completions answer ({type(error).__name__}): {response.text[:200]!r}"
                raise LLMAnswerError(msg) from error
        msg = f"{failure} after {self.retries + 1} attempt(s) to {url}"
        raise LLMUnavailableError(msg)


def json_content(content: str) -> Any:
    """The JSON value in an answer, bare or inside a Markdown code fence.

    Raises
    ------
    LLMAnswerError
        When it is not JSON.
    """
    fenced = _FENCE.match(content)
    text = fenced.group(1) if fenced else content
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        msg = f"answer is not JSON ({error.msg} at character {error.pos}): {content[:120]!r}"
        raise LLMAnswerError(msg) from error
