"""The bundled demo recording and the pyannote sample: paths, references, and how the demo is built.

:mod:`~livereview.demo.files` locates the bundled files and reads their references;
:mod:`~livereview.demo.script` is what the game master and players say;
:mod:`~livereview.demo.build` synthesizes the recording from it
(``python -m livereview.demo build``).

May import: :mod:`livereview.core`.
"""

from livereview.demo.build import LEAD_IN_S, SAMPLE_RATE, build_demo
from livereview.demo.files import (
    DEMO_DIR,
    DEMO_SESSION_ID,
    REFERENCE_COLUMNS,
    demo_audio_path,
    demo_party_path,
    demo_reference,
    demo_reference_path,
    demo_rttm_path,
    demo_scenes,
    demo_scenes_path,
    demo_stm_path,
    pyannote_sample_paths,
)
from livereview.demo.script import GM, NAMED_PLACES, NPCS, PEOPLE, PLAYERS, SCENES, SCRIPT

__all__ = [
    "DEMO_DIR",
    "DEMO_SESSION_ID",
    "GM",
    "LEAD_IN_S",
    "NAMED_PLACES",
    "NPCS",
    "PEOPLE",
    "PLAYERS",
    "REFERENCE_COLUMNS",
    "SAMPLE_RATE",
    "SCENES",
    "SCRIPT",
    "build_demo",
    "demo_audio_path",
    "demo_party_path",
    "demo_reference",
    "demo_reference_path",
    "demo_rttm_path",
    "demo_scenes",
    "demo_scenes_path",
    "demo_stm_path",
    "pyannote_sample_paths",
]
