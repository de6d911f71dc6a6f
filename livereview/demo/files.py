"""The bundled demo recording and pyannote's sample recording: where they are, and their references.

The demo (``livereview/data/demo/``) is a game master and three players at a fantasy
one-shot, made by :mod:`livereview.demo.build` from :mod:`livereview.demo.script`; its
references (speaker turns, transcript, IC/OOC labels) agree with the audio by
construction. pyannote.audio ships a real 30 s two-speaker recording with reference
turns, found here without importing pyannote.audio.
"""

from __future__ import annotations

import importlib.util
import json
from importlib.resources import files
from pathlib import Path

import pandas as pd

#: Folder of the bundled demo files.
DEMO_DIR = Path(str(files("livereview").joinpath("data", "demo")))

#: Session id of the demo: the stem of its files and the URI in RTTM and STM.
DEMO_SESSION_ID = "demo_session"

#: Columns of :func:`demo_reference`, in order.
REFERENCE_COLUMNS = ("start", "end", "speaker", "text", "ic_ooc", "segment_type", "character_tag")


def demo_audio_path() -> Path:
    """Path of the demo recording (mono FLAC, 22.05 kHz).

    Returns
    -------
    pathlib.Path
        ``demo_session.flac`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / f"{DEMO_SESSION_ID}.flac"


def demo_rttm_path() -> Path:
    """Path of the reference speaker turns of the demo (RTTM).

    Returns
    -------
    pathlib.Path
        ``demo_session.rttm`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / f"{DEMO_SESSION_ID}.rttm"


def demo_stm_path() -> Path:
    """Path of the reference transcript of the demo (STM).

    Returns
    -------
    pathlib.Path
        ``demo_session.stm`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / f"{DEMO_SESSION_ID}.stm"


def demo_reference_path() -> Path:
    """Path of the reference utterances of the demo (JSON lines).

    Returns
    -------
    pathlib.Path
        ``demo_session.jsonl`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / f"{DEMO_SESSION_ID}.jsonl"


def demo_scenes_path() -> Path:
    """Path of the reference scenes of the demo (JSON lines).

    Returns
    -------
    pathlib.Path
        ``demo_session.scenes.jsonl`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / f"{DEMO_SESSION_ID}.scenes.jsonl"


def demo_scenes(path: Path | None = None) -> pd.DataFrame:
    """Load the reference scenes of the demo.

    Returns
    -------
    pandas.DataFrame
        One row per scene, in order: ``scene``, ``kind`` (play or break), ``start``, ``end``
        (seconds), ``first_turn``, ``last_turn`` (rows of :func:`demo_reference`).
    """
    lines = (path or demo_scenes_path()).read_text(encoding="utf-8").splitlines()
    return pd.DataFrame([json.loads(line) for line in lines if line.strip()])


def demo_party_path() -> Path:
    """Path of the demo's party description (``party.yaml``).

    Returns
    -------
    pathlib.Path
        ``party.yaml`` in :data:`DEMO_DIR`.
    """
    return DEMO_DIR / "party.yaml"


def demo_reference(path: Path | None = None) -> pd.DataFrame:
    """Load the reference utterances of the demo.

    Parameters
    ----------
    path : pathlib.Path, optional
        A reference JSON-lines file; the bundled one by default.

    Returns
    -------
    pandas.DataFrame
        One row per turn, ordered by time, with the columns in :data:`REFERENCE_COLUMNS`.
    """
    lines = (path or demo_reference_path()).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))


def pyannote_sample_paths() -> dict[str, Path]:
    """Locate the sample recording shipped inside the pyannote.audio package.

    The package is found without importing it (importing pyannote.audio is slow).

    Returns
    -------
    dict of str to pathlib.Path
        ``"audio"``, ``"rttm"`` and ``"stm"``: ``sample.wav``, ``sample.rttm`` and
        ``sample.stm``.

    Raises
    ------
    FileNotFoundError
        When pyannote.audio is not installed or lacks its sample files.
    """
    try:
        spec = importlib.util.find_spec("pyannote.audio")
    except ModuleNotFoundError:
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        sample = Path(location) / "sample"
        paths = {
            "audio": sample / "sample.wav",
            "rttm": sample / "sample.rttm",
            "stm": sample / "sample.stm",
        }
        if all(path.is_file() for path in paths.values()):
            return paths
    raise FileNotFoundError(
        "pyannote.audio's sample recording (pyannote/audio/sample/sample.wav) was not found; "
        "install the package with `pip install pyannote.audio`"
    )
