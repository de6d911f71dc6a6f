"""The LLM classifier against a real local OpenAI-compatible server (starlette + uvicorn)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator

import pandas as pd
import pytest
from live_helpers import make_session
from llm_server import free_port, running, serve_chat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from livereview.core.party import Party
from livereview.stages.classify.embedding import default_classifier
from livereview.stages.classify.llm import (
    EXAMPLES_MARKER,
    PROMPT_VARIANTS,
    SEGMENTS_MARKER,
    LLMAnswerError,
    LLMClassifier,
    parse_answer,
    validate_item,
)
from livereview.stages.classify.real_talk import classify_stretches, load_labels, score, stretches

PARTY = Party.from_dict(
    {"game_master": "Dana", "characters": [{"name": "Mira", "player": "Alex"}, {"name": "Brannoc", "player": "Sam"}]}
)


def label(segment: dict[str, str]) -> dict[str, object]:
    """The test model's deterministic answer for one segment."""
    text = segment["text"].lower()
    if "roll" in text:
        ic_ooc, kind = "OOC", "MECHANICS"
    elif "pizza" in text:
        ic_ooc, kind = "OOC", "TABLE_TALK"
    elif segment["role"] == "game master":
        ic_ooc, kind = "IC", "NPC_DIALOGUE" if "welcome" in text else "DM_NARRATION"
    else:
        ic_ooc, kind = "ic", "character speech"  # sloppy spelling the client must normalise
    character = "Old Tomas" if kind == "NPC_DIALOGUE" else ""
    return {"id": segment["id"], "ic_ooc": ic_ooc, "segment_type": kind, "character": character, "confidence": 0.9}


def segments_in(prompt: str) -> list[dict[str, str]]:
    lines = prompt.splitlines()
    return json.loads(lines[lines.index(SEGMENTS_MARKER) + 1])


async def chat_completions(request: Request) -> JSONResponse:
    body = await request.json()
    state = request.app.state
    state.requests.append({"body": body, "authorization": request.headers.get("authorization")})
    model = body["model"]
    state.calls[model] += 1
    segments = segments_in(body["messages"][-1]["content"])
    answer: object = {"segments": [label(s) for s in segments]}
    if model == "garbage":
        content = "Honestly these all look in character to me!"
    elif model == "slow":
        await asyncio.sleep(2.0)
        content = json.dumps(answer)
    elif model == "flaky" and state.calls[model] == 1:
        return JSONResponse({"error": "model is loading"}, status_code=500)
    elif model == "partial":
        content = json.dumps({"segments": [label(segments[0])]})
    elif model == "fenced":
        content = "```json\n" + json.dumps([label(s) for s in segments]) + "\n```"
    else:
        content = json.dumps(answer)
    return JSONResponse({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


@pytest.fixture(scope="module")
def server() -> Iterator[Starlette]:
    app = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])
    app.state.requests, app.state.calls = [], Counter()
    with running(app) as root:
        app.state.url = f"{root}/v1"
        yield app


@pytest.fixture
def app(server: Starlette) -> Starlette:
    server.state.requests.clear()
    server.state.calls.clear()
    return server


ROWS = [
    ("Dana", "The tavern is warm and smells of onions."),
    ("Dana", "Welcome, welcome! Sit anywhere you like."),
    ("Alex", "We need two rooms for the night."),
    ("Sam", "I rolled a nine on perception."),
    ("Alex", "Is the pizza here yet?"),
]


def frame(rows: list[tuple[str, str]] = ROWS) -> pd.DataFrame:
    data = pd.DataFrame(rows, columns=["player", "text"])
    data["segment_id"] = [f"c00001-s{i:03d}" for i in range(len(data))]
    data["speaker_id"] = data["player"]
    data["is_game_master"] = data["player"] == "Dana"
    data["context"] = False
    return data.set_index(pd.Index(data["segment_id"], name=None))


def client(app: Starlette, model: str, **options: object) -> LLMClassifier:
    defaults = {"fallback": "keywords", "backoff": 0.01, "timeout": 5.0}
    return LLMClassifier(app.state.url, model, **{**defaults, **options})


def test_labels_come_from_the_server_in_batches(app: Starlette) -> None:
    result = client(app, "echo", batch_size=2, api_key="secret")(frame(), PARTY)
    assert result.index.equals(frame().index)
    assert result["ic_ooc"].tolist() == ["IC", "IC", "IC", "OOC", "OOC"]
    assert result["segment_type"].tolist() == [
        "DM_NARRATION",
        "NPC_DIALOGUE",
        "CHARACTER_SPEECH",
        "MECHANICS",
        "TABLE_TALK",
    ]
    assert result["character_tag"].tolist() == ["DM", "Old Tomas", "Mira", "", ""]
    assert result["ic_ooc_confidence"].tolist() == [0.9] * 5
    assert (result["classifier"] == "llm:echo:default").all()
    requests = app.state.requests
    assert [len(segments_in(r["body"]["messages"][-1]["content"])) for r in requests] == [2, 2, 1]
    assert all(r["authorization"] == "Bearer secret" for r in requests)
    assert requests[0]["body"]["temperature"] == 0
    assert requests[0]["body"]["response_format"] == {"type": "json_object"}


def test_prompt_variant_and_model_are_recorded(app: Starlette) -> None:
    result = client(app, "echo", prompt_variant="terse")(frame(), PARTY)
    assert (result["classifier"] == "llm:echo:terse").all()
    system = app.state.requests[0]["body"]["messages"][0]
    assert system == {"role": "system", "content": PROMPT_VARIANTS["terse"]}
    user = app.state.requests[0]["body"]["messages"][1]["content"]
    assert "Game master: Dana. Player characters: Mira (played by Alex); Brannoc (played by Sam)." in user


def test_earlier_rows_are_sent_as_context(app: Starlette) -> None:
    client(app, "echo", batch_size=3, context_lines=2)(frame(), PARTY)
    second = app.state.requests[1]["body"]["messages"][1]["content"]
    assert [s["id"] for s in segments_in(second)] == ["s3", "s4"]
    assert "EARLIER LINES, CONTEXT ONLY" in second
    assert "Welcome, welcome!" in second and "The tavern is warm" not in second


def test_fenced_json_lists_are_accepted(app: Starlette) -> None:
    result = client(app, "fenced")(frame(), PARTY)
    assert (result["classifier"] == "llm:fenced:default").all()


def test_transient_server_error_is_retried(app: Starlette) -> None:
    result = client(app, "flaky", retries=2)(frame(), PARTY)
    assert (result["classifier"] == "llm:flaky:default").all()
    assert app.state.calls["flaky"] == 2


def test_garbage_answer_falls_back_with_a_warning(app: Starlette, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="livereview.stages.classify.llm"):
        result = client(app, "garbage")(frame(), PARTY)
    assert (result["classifier"] == "keywords-0.2").all()
    assert result["ic_ooc"].isin(["IC", "OOC", "MIXED"]).all()
    assert "unusable answer" in caplog.text and "answer is not JSON" in caplog.text
    assert app.state.calls["garbage"] == 1  # a garbled answer is not retried


def test_rows_missing_from_the_answer_fall_back_alone(app: Starlette) -> None:
    result = client(app, "partial", batch_size=5)(frame(), PARTY)
    assert result["classifier"].tolist() == ["llm:partial:default"] + ["keywords-0.2"] * 4


def test_slow_server_times_out_and_falls_back(app: Starlette, caplog: pytest.LogCaptureFixture) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="livereview.stages.classify.llm"):
        result = client(app, "slow", timeout=0.3, retries=1, batch_size=2)(frame(), PARTY)
    assert time.monotonic() - started < 1.9  # two attempts, then the remaining batches skip the server
    assert (result["classifier"] == "keywords-0.2").all()
    assert "no answer within 0.3 s after 2 attempt(s)" in caplog.text
    assert app.state.calls["slow"] == 2


def test_absent_server_falls_back_to_the_default_classifier(caplog: pytest.LogCaptureFixture) -> None:
    absent = LLMClassifier(f"http://127.0.0.1:{free_port()}/v1", "llama3", retries=1, backoff=0.01, timeout=2.0)
    with caplog.at_level(logging.WARNING, logger="livereview.stages.classify.llm"):
        result = absent(frame(), PARTY)
    assert (result["classifier"] == default_classifier().name).all()
    assert result.loc["c00001-s003", "ic_ooc"] == "OOC"
    assert "unavailable (ConnectError" in caplog.text


def test_an_absent_server_is_not_retried_on_every_call(caplog: pytest.LogCaptureFixture) -> None:
    absent = LLMClassifier(
        f"http://127.0.0.1:{free_port()}/v1", "llama3", fallback="keywords", retries=2, backoff=0.2, retry_after=60
    )
    started = time.monotonic()
    absent(frame(), PARTY)
    assert time.monotonic() - started >= 0.6  # two backoffs: 0.2 s, then 0.4 s
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="livereview.stages.classify.llm"):
        result = absent(frame(), PARTY)
    assert time.monotonic() - started < 0.2
    assert (result["classifier"] == "keywords-0.2").all()
    assert "was unavailable moments ago; using the fallback" in caplog.text


def test_spec_strings_and_bad_options() -> None:
    terse = LLMClassifier.from_spec("llm:http://localhost:8080/v1:qwen2.5:terse")
    assert (terse.base_url, terse.model, terse.prompt_variant) == ("http://localhost:8080/v1", "qwen2.5", "terse")
    tagged = LLMClassifier.from_spec("llm:http://127.0.0.1:11434:llama3:8b")
    assert (tagged.base_url, tagged.model, tagged.prompt_variant) == ("http://127.0.0.1:11434", "llama3:8b", "default")
    assert LLMClassifier.from_spec(tagged.spec) == tagged
    assert tagged.spec == "llm:http://127.0.0.1:11434:llama3:8b:default"
    with pytest.raises(ValueError, match="needs a server URL and a model"):
        LLMClassifier.from_spec("llm:llama3")
    with pytest.raises(ValueError, match="unknown prompt variant 'chatty'; choose one of default, terse"):
        LLMClassifier("http://x/v1", "m", prompt_variant="chatty")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        LLMClassifier("http://x/v1", "m", batch_size=0)


def test_answer_parsing_and_validation() -> None:
    assert parse_answer('{"segments": [{"id": "s0"}]}') == [{"id": "s0"}]
    assert parse_answer('```\n[{"id": "s1"}]\n```') == [{"id": "s1"}]
    with pytest.raises(LLMAnswerError, match="answer is not JSON"):
        parse_answer("sure! here you go")
    with pytest.raises(LLMAnswerError, match="answer must be"):
        parse_answer('{"labels": []}')
    item = validate_item({"ic_ooc": "mixed", "segment_type": "Character-Action", "confidence": 1, "character": "NPC"})
    assert item == {"ic_ooc": "MIXED", "segment_type": "CHARACTER_ACTION", "confidence": 1.0, "character": None}
    with pytest.raises(LLMAnswerError, match=r"confidence '0\.9' is not a number from 0 to 1"):
        validate_item({"ic_ooc": "IC", "segment_type": "MECHANICS", "confidence": "0.9"})
    with pytest.raises(LLMAnswerError, match="segment_type 'BANTER' is not one of"):
        validate_item({"ic_ooc": "OOC", "segment_type": "BANTER"})


def test_corrections_are_sent_as_labelled_examples(app: Starlette) -> None:
    corrections = frame(ROWS[3:5]).assign(ic_ooc=["OOC", None], character_tag=[None, ""])
    taught = client(app, "echo").with_corrections(corrections, PARTY)
    result = taught(frame(ROWS[:2]), PARTY)
    assert (result["classifier"] == "llm:echo:default+2corrections").all()
    user = app.state.requests[0]["body"]["messages"][1]["content"]
    shown = json.loads(user.split(EXAMPLES_MARKER, 1)[1].split("\n", 2)[1])
    assert shown == [
        {"speaker": "Sam", "role": "player", "text": "I rolled a nine on perception.", "ic_ooc": "OOC"},
        {"speaker": "Alex", "role": "player", "text": "Is the pizza here yet?", "character": ""},
    ]


def test_a_rerun_with_a_prompt_variant_learns_from_corrections(app: Starlette, tmp_path, sample) -> None:
    session = make_session(sample["audio"], tmp_path)
    session.set_override("c00000-s001", user="ana", ic_ooc="OOC", reason="dice talk")
    spec = f"llm:{app.state.url}:echo"
    rerun = session.reclassify(chunks=[0], user="ana", classifier=spec, variant="terse", progress=False)
    assert rerun.record["model"] == "llm:echo:terse+1corrections" and rerun.record["variant"] == "terse"
    assert rerun.record["parameters"]["corrections"] == 1
    assert app.state.requests and all(
        EXAMPLES_MARKER in request["body"]["messages"][1]["content"] for request in app.state.requests
    )
    assert app.state.requests[0]["body"]["messages"][0]["content"] == PROMPT_VARIANTS["terse"]
    assert set(session.segments["classifier"]) == {"llm:echo:terse+1corrections"}
    session.close()


def test_prompt_variants_are_scored_on_the_real_talk_dev_labels() -> None:
    """Each prompt variant, through a real local server, on a dev stretch of the shipped labels.

    The server answers every line with its label (an oracle), so what is measured is the path:
    prompts carrying the party and its NPCs, ids mapped back, tags derived, the scores computed.
    """
    labels = load_labels()
    item = next(stretches(labels, granularity="sentence", with_party=True))
    truth = list(item.truth.itertuples(index=False))
    prompts: list[str] = []

    def oracle(messages: list[dict[str, str]]) -> str:
        prompts.append(messages[1]["content"])
        lines = json.loads(messages[1]["content"].split(SEGMENTS_MARKER)[1].split("\nAnswer with")[0])
        rows = [(line["id"], truth[int(line["id"][1:])]) for line in lines]  # ids are "s<row>"
        answers = [
            {"id": i, "ic_ooc": t.ic_ooc, "segment_type": t.segment_type, "character": t.character, "confidence": 0.9}
            for i, t in rows
        ]
        return json.dumps({"segments": answers})

    with serve_chat(oracle) as base_url:
        for variant in PROMPT_VARIANTS:
            classifier = LLMClassifier(base_url, "oracle", prompt_variant=variant)
            figures = score(*classify_stretches(classifier, [item]))
            assert figures["macro_f1"] == pytest.approx(1.0), variant
            assert figures["accuracy"] == pytest.approx(1.0), variant
    assert all("Known non-player characters, voiced by the game master: Kima" in prompt for prompt in prompts)
