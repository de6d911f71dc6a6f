"""Every input of every command is checked before any work: one line per problem, exit 2, nothing written.

Each case runs the real command line in a fresh interpreter and checks, besides the
message, that nothing under the test folder changed and that no model library was
loaded (the check came before any model).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from live_helpers import make_session

import livereview
from livereview.demo import demo_audio_path, pyannote_sample_paths

MODEL_LIBRARIES = ("torch", "faster_whisper", "ctranslate2", "sentence_transformers", "pyannote.audio")
SAMPLE = pyannote_sample_paths()["audio"]


def run_cli(*args: str, cwd: Path) -> tuple[int, str, list[str]]:
    """Exit status, standard error and the model libraries loaded by ``livereview ARGS``."""
    probe = (
        "import json, sys\nfrom livereview.cli import main\n"
        f"status = main({list(args)!r})\n"
        f"print(json.dumps([status, [m for m in {MODEL_LIBRARIES!r} if m in sys.modules]]))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=cwd)
    status, loaded = json.loads(result.stdout.strip().splitlines()[-1])
    return status, result.stderr, loaded


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder with a complete session (``out/sample``), a transcript, party files and token files."""
    make_session(SAMPLE, tmp_path / "out").close()
    (tmp_path / "broken.yaml").write_text("game_master: [Dana\n", encoding="utf-8")
    (tmp_path / "unknown-key.yaml").write_text("game_master: Dana\nplayers: [Alex]\n", encoding="utf-8")
    (tmp_path / "transcript.jsonl").write_text('{"text": "hi", "speaker": "Dana"}\nnot json\n', encoding="utf-8")
    (tmp_path / "tokens.txt").write_text("short ana editor\n", encoding="utf-8")
    (tmp_path / "noise.flac").write_text("not audio\n" * 100, encoding="utf-8")
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    (tmp_path / "manifest.csv").write_text(f"path,speakers\n{SAMPLE},4\n", encoding="utf-8")
    return tmp_path


CASES = {
    "run: missing recording": (["run", "missing.flac", "--out", "out"], ["audio file not found: missing.flac"]),
    "run: not audio": (["run", "noise.flac", "--out", "out"], ["noise.flac holds no audio"]),
    "run: party file that does not parse": (
        ["run", str(SAMPLE), "--out", "new", "--party", "broken.yaml"],
        ["party file broken.yaml is not valid YAML"],
    ),
    "run: party file with an unknown key": (
        ["run", str(SAMPLE), "--out", "new", "--party", "unknown-key.yaml"],
        ["unknown-key.yaml", "'players'"],
    ),
    "run: every problem at once, one line each": (
        ["run", "noise.flac", "--out", "a-file/out", "--num-speakers", "0", "--classifier", "bogus"],
        [
            "error: num_speakers must be at least 1; got 0",
            "error: noise.flac holds no audio",
            "error: cannot create the session directory a-file/out/noise: a-file is a file, not a folder",
        ],
    ),
    "run: unknown classifier": (
        ["run", str(SAMPLE), "--out", "new", "--classifier", "bogus"],
        ["unknown classifier 'bogus'"],
    ),
    "run: an LLM classifier without a model": (
        ["run", str(SAMPLE), "--out", "new", "--classifier", "llm:nowhere"],
        ["needs a server URL and a model"],
    ),
    "run: a Whisper model directory that is not there": (
        ["run", str(SAMPLE), "--out", "new", "--whisper-model", "./models/whisper-large"],
        ["Whisper model directory", "not found"],
    ),
    "run: a session directory of another recording": (
        ["run", str(demo_audio_path()), "--out", "out", "--session-id", "sample"],
        ["holds results for another recording"],
    ),
    "run: resuming with other options": (
        ["run", str(SAMPLE), "--out", "out", "--num-speakers", "3"],
        ["was run with other options (diarize differ)"],
    ),
    "run: a session id that is a path": (
        ["run", str(SAMPLE), "--out", "new", "--session-id", "../elsewhere"],
        ["session id '../elsewhere' must be a plain folder name"],
    ),
    "run: idle timeout": (
        ["run", str(SAMPLE), "--out", "new", "--follow", "--idle-timeout", "0"],
        ["--idle-timeout must be positive seconds; got 0.0"],
    ),
    "batch: a manifest with an unknown column": (
        ["batch", "manifest.csv", "--out", "new"],
        ["manifest column 'speakers' is unknown"],
    ),
    "batch: a glob that matches nothing": (["batch", "nowhere/*.flac", "--out", "new"], ["matches no file"]),
    "batch: bad speaker count": (
        ["batch", str(SAMPLE), "--out", "new", "--num-speakers", "0"],
        ["num_speakers must be at least 1; got 0"],
    ),
    "rerun: missing session": (
        ["rerun", "nowhere", "reclassify", "--segments", "a:b", "--user", "ana"],
        ["nowhere is not a livereview session directory"],
    ),
    "rerun: unknown segments": (
        ["rerun", "out/sample", "reclassify", "--segments", "c00000-s000:c09999-s000", "--user", "ana"],
        ["unknown segment ids c09999-s000"],
    ),
    "rerun: bad speaker count": (
        ["rerun", "out/sample", "rediarize", "--chunks", "0", "--num-speakers", "0", "--user", "ana"],
        ["num_speakers must be at least 1; got 0"],
    ),
    "rerun: unknown classifier": (
        ["rerun", "out/sample", "reclassify", "--chunks", "0", "--classifier", "bogus", "--user", "ana"],
        ["unknown classifier 'bogus'"],
    ),
    "rerun: no user": (["rerun", "out/sample", "reclassify", "--chunks", "0"], ["--user is required"]),
    "classify: transcript with a bad line": (
        ["classify", "transcript.jsonl", "-o", "labelled.jsonl"],
        ["transcript.jsonl line 2: not JSON"],
    ),
    "classify: party file that does not parse": (
        ["classify", "transcript.jsonl", "--party", "broken.yaml", "-o", "labelled.jsonl"],
        ["party file broken.yaml is not valid YAML"],
    ),
    "override: unknown segment": (
        ["override", "out/sample", "c09999-s000", "--user", "ana", "--text", "hi"],
        ["unknown segment"],
    ),
    "override: nothing to correct": (
        ["override", "out/sample", "c00000-s000", "--user", "ana"],
        ["nothing to correct"],
    ),
    "override: missing session": (
        ["override", "nowhere", "c00000-s000", "--user", "ana", "--text", "hi"],
        ["nowhere is not a livereview session directory"],
    ),
    "serve: token file with a short token": (
        ["serve", "out/sample", "--token-file", "tokens.txt"],
        ["token file tokens.txt line 1: token is 5 characters"],
    ),
    "serve: another address without tokens": (
        ["serve", "out/sample", "--host", "0.0.0.0"],
        ["refusing to listen on '0.0.0.0' without tokens"],
    ),
    "serve: port out of range": (["serve", "out/sample", "--port", "70000"], ["--port must be between 0 and 65535"]),
    "serve: missing session": (["serve", "nowhere"], ["nowhere is not a livereview session directory"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_before_any_work(work: Path, case: str) -> None:
    args, messages = CASES[case]
    before = snapshot(work)
    status, stderr, loaded = run_cli(*args, cwd=work)
    assert status == 2, stderr
    command = args[0]
    for message in messages:
        assert message in stderr, stderr
    assert all(line.startswith(f"livereview {command}: error: ") for line in stderr.strip().splitlines()), stderr
    assert snapshot(work) == before  # nothing written
    assert loaded == []  # no model loaded


def test_the_python_api_lists_every_problem_before_any_work(work: Path) -> None:
    before = snapshot(work)
    with pytest.raises(livereview.InputError) as refused:
        livereview.run(work / "noise.flac", out_dir=work / "a-file", num_speakers=0, party=work / "broken.yaml")
    assert len(refused.value.problems) == 3
    assert snapshot(work) == before
