"""The house follows the data: import-linter contracts hold, and light uses load no model library."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
#: What ``import livereview`` (and the CLI's ``--help``, ``export``...) must not load.
MODEL_LIBRARIES = ("torch", "torchaudio", "pyannote.audio", "ctranslate2", "faster_whisper", "sentence_transformers")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts over the ``livereview`` package found in ``root``."""
    env = os.environ | {"PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 5 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "message"),
    [
        (
            "core/segments.py",
            "from livereview.store.results import SessionStore",
            "Rooms follow the data",
            "livereview.core is not allowed to import livereview.store",
        ),
        (
            "stages/pipeline.py",
            "from livereview.live.emitter import EventEmitter",
            "The stages import no store, live emitter",
            "livereview.stages is not allowed to import livereview.live",
        ),
        (
            "review/view.py",
            "import torch",
            "Model libraries",
            "livereview.review is not allowed to import torch",
        ),
        (
            "stages/chunks.py",
            "from livereview.stages.pipeline import run_pipeline",
            "No import cycles",
            "- .chunks -> .pipeline",
        ),
        (
            "store/results.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from livereview.review.session import Session",
            "Rooms follow the data",
            "livereview.store is not allowed to import livereview.review",
        ),
        (
            "core/events.py",
            "def _type_only() -> None:\n    from livereview.stages.chunks import Chunk",
            "The live event schema imports nothing of the pipeline",
            "livereview.core.events is not allowed to import livereview.stages",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str, message: str
) -> None:
    shutil.copytree(ROOT / "livereview", tmp_path / "livereview", ignore=shutil.ignore_patterns("__pycache__", "data"))
    target = tmp_path / "livereview" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n\n{line}  # noqa\n", encoding="utf-8")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken and message in broken, result.stdout


@pytest.mark.parametrize(
    "code",
    [
        "import livereview",
        "import livereview.cli; livereview.cli.main(['--help'])",
        "import livereview.review.exports, livereview.review.view, livereview.store.overrides",
    ],
)
def test_light_uses_load_no_model_library(code: str) -> None:
    probe = (
        "import sys\ntry:\n"
        + "".join(f"    {statement.strip()}\n" for statement in code.split(";"))
        + "except SystemExit:\n    pass\n"
        + f"print(sorted(m for m in {MODEL_LIBRARIES!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout
