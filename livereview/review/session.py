"""A recorded game session: the facade over its directory, run, corrections, views, exports and reruns.

Usage
-----
>>> session = livereview.run("game.flac", num_speakers=4)        # doctest: +SKIP
>>> session.segments.head()                                       # doctest: +SKIP
>>> session = livereview.run("game.flac", background=True)       # doctest: +SKIP
>>> session.events.subscribe(print)                               # doctest: +SKIP
>>> session.wait()                                                # doctest: +SKIP
>>> session = livereview.open_session("output/game")              # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pandas as pd

from livereview.core.options import ChunkOptions, FollowOptions, RunOptions
from livereview.core.saved import CREATED
from livereview.core.threads import thread_budget
from livereview.live.metrics import metrics_frame
from livereview.review import artifacts, exports, reclassify, rediarize, reruns, snippets, story
from livereview.review.attribution import other_speakers, word_table
from livereview.review.checks import build_options, default_session_id, existing_session_problems, plan_run
from livereview.review.locate import copy_party, recording_record
from livereview.review.observability import session_health, session_metrics
from livereview.review.run import run_session, start_session
from livereview.review.speaker_suggestions import suggest_speaker_map
from livereview.review.state import SessionState
from livereview.review.view import conform_view, merged_view
from livereview.stages.audio import file_hash, head_hash, probe
from livereview.stages.knowledge import Knowledge
from livereview.store.rerun_log import Rerun, RerunBusyError
from livereview.store.results import SessionStore

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("output")


def run(
    audio: os.PathLike[str] | str,
    *,
    session_id: str | None = None,
    out_dir: os.PathLike[str] | str = DEFAULT_OUTPUT,
    num_speakers: int | str | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    whisper_model: str = "tiny.en",
    language: str | None = None,
    device: str = "auto",
    diarization_pipeline: str = "offline",
    hub_token: str | None = None,
    chunk_length: float | ChunkOptions | dict[str, Any] | None = None,
    classifier: Any = None,
    party: os.PathLike[str] | str | None = None,
    follow: bool = False,
    idle_timeout: float = 30.0,
    background: bool = False,
    progress: bool = True,
    threads: int | None = None,
) -> Session:
    """Run the whole pipeline on ``audio`` and return its :class:`Session`.

    Every input is checked first (:func:`livereview.review.checks.plan_run`): nothing
    loads and nothing is written until all are right. Re-running with the same
    recording and session id resumes after the last completed chunk. With
    ``background=True`` the run goes on in a thread and the session is returned at
    once: subscribe to ``session.events``, then ``session.wait()``.

    Parameters
    ----------
    audio : path
        Any recording FFmpeg decodes.
    session_id : str, optional
        Directory name under ``out_dir``; defaults to the file name.
    num_speakers, min_speakers, max_speakers : int, optional
        Speaker count, when known. With a ``party`` file and neither ``num_speakers``
        nor ``max_speakers``, the table (game master and players) bounds the count;
        ``num_speakers="auto"`` leaves it open.
    whisper_model : str
        faster-whisper model name or directory; ``"tiny.en"`` is bundled offline.
    language : str, optional
        Spoken language (``"en"``); detected when omitted.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    diarization_pipeline : str
        ``"offline"`` or a pretrained pyannote pipeline name (with ``hub_token``).
    chunk_length : float or ChunkOptions, optional
        Preferred chunk length in seconds (20 s by default).
    classifier : str or callable, optional
        IC/OOC classifier name or object; the default offline classifier otherwise.
    party : path, optional
        Party file (YAML) naming the game master and the characters; a copy is kept
        in the session directory.
    follow : bool
        The recording is still being written (by OBS, Audacity, a phone...): process
        each chunk as soon as its audio has arrived, until the file has not grown for
        ``idle_timeout`` seconds or :meth:`Session.stop` is called.
    idle_timeout : float
        Seconds without growth that end a followed recording.
    threads : int, optional
        Threads the models may use in all; by default the cores this process may use
        (CPU affinity and container quota, or ``LIVEREVIEW_THREADS``). With two or more,
        the next chunk is transcribed while the current one is diarized.

    Raises
    ------
    InputError
        Any input that cannot work, every problem on a line of its own.
    """
    options, problems = build_options(
        chunk_length=chunk_length,
        whisper_model=whisper_model,
        language=language,
        device=device,
        diarization_pipeline=diarization_pipeline,
        num_speakers=num_speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        hub_token=hub_token,
        classifier=classifier,
        party=party,
    )
    following = _collect_follow(problems, idle_timeout) if follow else None
    if threads is not None:
        try:
            thread_budget(threads)
        except ValueError as error:
            problems.append(str(error))
    plan = plan_run(audio, out_dir=out_dir, options=options, session_id=session_id, follow=follow, problems=problems)
    session = Session.create(
        plan.info.path, session_id=plan.session_id, out_dir=out_dir, options=plan.options, follow=follow
    )
    if background:
        return session.start(progress=progress, follow=following, threads=threads)
    return session.run(progress=progress, follow=following, threads=threads)


def _collect_follow(problems: list[str], idle_timeout: float) -> FollowOptions | None:
    try:
        return FollowOptions(idle_timeout=idle_timeout)
    except ValueError as error:
        problems.append(str(error))
        return None


class Session(SessionState):
    """One recorded session: its directory, base results, live events and operator state.

    Create one with :func:`livereview.run` (or :meth:`Session.create`) and reopen one
    with :func:`livereview.open_session`. ``segments`` is the base segment table,
    :meth:`view` the corrected one.
    """

    def __init__(
        self, store: SessionStore, options: RunOptions | None = None, *, audio: os.PathLike[str] | str | None = None
    ) -> None:
        super().__init__(store, options, audio=audio)
        self._stop = threading.Event()
        self._finish_interrupted_rerun()

    # -- creation -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        audio: os.PathLike[str] | str,
        *,
        session_id: str | None = None,
        out_dir: os.PathLike[str] | str = DEFAULT_OUTPUT,
        options: RunOptions | None = None,
        follow: bool = False,
    ) -> Session:
        """Prepare the session directory for ``audio``, or reopen it to resume.

        ``follow=True`` prepares a recording still being written: it is named by the
        hash of its first MiB until the run ends and hashes it whole.

        Raises
        ------
        FileNotFoundError, AudioError
            The recording is missing, undecodable or empty.
        FileExistsError
            The session directory belongs to another recording or other options.
        """
        info = probe(audio)
        options = options or RunOptions()
        session_id = session_id or default_session_id(info.path)
        directory = Path(out_dir) / session_id
        store = SessionStore(directory)
        if store.exists():
            problems = existing_session_problems(directory, info.path, options)
            if problems:
                raise FileExistsError("\n".join(problems))
            store.load()
            located = recording_record(info.path, directory)
            if any(store.metadata["audio"].get(key) != value for key, value in located.items()):
                store.update_metadata(audio=store.metadata["audio"] | located)
        else:
            named = (
                {"sha256_head": head_hash(info.path), "following": True} if follow else {"sha256": file_hash(info.path)}
            )
            store.create(
                {
                    "session_id": session_id,
                    "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "audio": info.to_dict() | recording_record(info.path, directory) | named,
                    "config": options.to_config(),
                    "status": CREATED,
                    "models": {},
                }
            )
            if options.party is not None:
                store.update_metadata(party=copy_party(options.party, directory))
        return cls(store, options)

    @classmethod
    def open(cls, directory: os.PathLike[str] | str, *, audio: os.PathLike[str] | str | None = None) -> Session:
        """Reopen a session directory written by an earlier run, from any folder.

        ``audio`` says where the recording is now, when it moved (it must be the same
        file: its hash is checked); otherwise it is looked for (see :mod:`livereview.review.locate`).
        """
        store = SessionStore(directory)
        store.load()
        return cls(store, audio=audio)

    # -- running ------------------------------------------------------------------------------

    def run(self, *, progress: bool = True, follow: FollowOptions | None = None, threads: int | None = None) -> Session:
        """Process the recording (resuming after the last completed chunk) and return ``self``.

        With ``follow`` the recording is still being written; ``threads`` overrides the
        cores this process may use (see :func:`livereview.run`).
        """
        run_session(self, progress=progress, follow=follow, stop=self._stop, threads=threads)
        return self

    def start(
        self, *, progress: bool = False, follow: FollowOptions | None = None, threads: int | None = None
    ) -> Session:
        """Run in a background thread, so a notebook stays responsive; see :meth:`wait`."""
        start_session(self, progress=progress, follow=follow, stop=self._stop, threads=threads)
        return self

    def stop(self) -> None:
        """End a followed recording now (the chunks so far and the global pass complete the run)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> Session:
        """Wait for a background run; re-raise its error."""
        if self._run_thread is not None:
            self._run_thread.join(timeout)
            if self._run_thread.is_alive():
                msg = f"session {self.session_id!r} still running after {timeout} s"
                raise TimeoutError(msg)
        if self.error is not None:
            raise self.error
        return self

    # -- the corrected view and its exports ---------------------------------------------------

    def view(self, *, show_base: bool = False, show_disagreements: bool = False) -> pd.DataFrame:
        """Base results with corrections applied; ``overridden`` lists the corrected fields.

        With ``show_base=True`` a ``<field>_base`` column shows the model's value beside each;
        with ``show_disagreements=True`` a ``disagreements`` column lists the corrected fields a
        later rerun disagrees with (see :meth:`disagreements`).
        """
        view = conform_view(merged_view(self.segments, self.corrected_values(), show_base=show_base))
        if show_disagreements:
            found = self.disagreements().groupby("segment_id")["field"].agg(tuple)
            view["disagreements"] = [found.get(sid, ()) for sid in view.index]
        return view

    def export(self, fmt: str, path: os.PathLike[str] | str | None = None, *, selection: str = "all") -> Path:
        """Write the corrected view as ``txt``, ``srt``, ``vtt``, ``json`` or ``rttm``; returns the path.

        RTTM comes from the speaker turns with corrections (:meth:`diarization`), not one line per
        segment; the transcript formats write a speaker change inside a segment as its own line.

        ``selection`` is ``"all"``, ``"ic"`` or ``"ooc"``. The default path is
        ``exports/<session_id>[-ic|-ooc].<fmt>`` in the session directory.
        """
        if path is None:
            suffix = "" if selection == "all" else f"-{selection}"
            self.paths.exports.mkdir(exist_ok=True)
            path = self.paths.exports / f"{self.session_id}{suffix}.{fmt}"
        return exports.write_export(
            self.view(), self._export_metadata(), fmt, path, selection=selection, turns=self.diarization()
        )

    def export_text(self, fmt: str, *, selection: str = "all") -> str:
        """The corrected view in format ``fmt`` as a string (see :meth:`export`)."""
        return exports.export(self.view(), self._export_metadata(), fmt, selection=selection, turns=self.diarization())

    def words(self) -> pd.DataFrame:
        """Every word of the corrected view with the speaker heard during it.

        Columns ``segment_id``, ``word_index``, ``start``, ``end``, ``word``, ``probability``,
        ``speaker_id``: a word takes the speaker of the corrected turns (:meth:`diarization`)
        covering most of it, the segment's own speaker keeping it in overlapped speech
        (:mod:`livereview.review.attribution`).
        """
        return word_table(self.view(), self.diarization())

    def other_speakers(self) -> pd.Series:
        """Per segment id, the other speakers heard during the segment (overlap, interjections)."""
        return other_speakers(self.view(), self.diarization())

    def _export_metadata(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "audio_path": str(self.audio_path),
            "duration": self.metadata["audio"]["duration"],
            "models": self.metadata.get("models", {}),
            "status": self.status,
        }

    # -- downstream artifacts: snippets, scenes, knowledge -------------------------------------

    def export_snippets(
        self,
        selection: str = "all",
        by: str = "segment",
        format: str = "flac",
        out: os.PathLike[str] | str | None = None,
        **options: Any,
    ) -> snippets.SnippetExport:
        """Audio clips per segment, speaker or scene, with a manifest.

        See :func:`livereview.review.snippets.export_snippets` for the options.
        """
        scenes = self.scenes() if by == "scene" else None
        return snippets.export_snippets(
            self, self.view(), selection=selection, by=by, format=format, out=out, scenes=scenes, **options
        )

    def scenes(self, **options: Any) -> pd.DataFrame:
        """The session's scenes, kept current; see :func:`livereview.review.story.session_scenes`."""
        return story.session_scenes(self, self.view(), **options)

    def knowledge(self, **options: Any) -> Knowledge:
        """Entities, mentions and quest/hook candidates, kept current.

        See :func:`livereview.review.story.session_knowledge` for the options.
        """
        return story.session_knowledge(self, self.view(), **options)

    def artifacts_stale(self) -> pd.DataFrame:
        """Which snippets, scenes and knowledge builds are out of date, and why.

        See :func:`livereview.review.artifacts.stale_artifacts`.
        """
        return artifacts.stale_artifacts(self)

    # -- partial reruns -----------------------------------------------------------------------

    def reclassify(self, selection: Any = None, *, user: str, **options: Any) -> Rerun:
        """Classify a selection again; see :func:`livereview.review.reclassify.reclassify`."""
        return reclassify.reclassify(self, selection, user=user, **options)

    def rediarize(self, selection: Any = None, *, user: str, **options: Any) -> Rerun:
        """Diarize a selection again; see :func:`livereview.review.rediarize.rediarize`."""
        return rediarize.rediarize(self, selection, user=user, **options)

    def preview_reclassify(self, selection: Any = None, **options: Any) -> pd.DataFrame:
        """What :meth:`reclassify` would give, changing nothing (see :mod:`livereview.review.reclassify`)."""
        return reclassify.preview_reclassify(self, selection, **options)

    def rerun_history(self) -> pd.DataFrame:
        """One row per rerun: id, kind, user, model, variant, times, segments and changes."""
        return self.rerun_log.history()

    def rerun(self, rerun_id: str) -> Rerun:
        """A past rerun by id (``rerun.diff()`` compares it with what came before it)."""
        return self.rerun_log.get(rerun_id)

    def disagreements(self) -> pd.DataFrame:
        """Corrections in effect that the latest rerun of their field disagrees with."""
        return reruns.disagreements(self)

    def _finish_interrupted_rerun(self) -> None:
        """Complete a rerun whose commit a killed process left journaled (see :mod:`livereview.store.rerun_log`)."""
        if not self.rerun_log.pending_path.exists():
            return
        try:
            lock = self.rerun_log.lock()
        except RerunBusyError:
            return  # another process is committing it right now
        try:
            reruns.finish_interrupted(self, self.rerun_log)
        finally:
            lock.release()

    # -- observability ------------------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """Stage timings, real-time factors, events emitted/dropped per subscriber and client,
        throughput, override and rerun counts (see :func:`livereview.review.observability.session_metrics`)."""
        return session_metrics(self)

    def metrics_frame(self) -> pd.DataFrame:
        """:meth:`metrics` as rows of ``metric``, ``scope``, ``value``."""
        return metrics_frame(self.metrics())

    def health(self) -> list[dict[str, Any]]:
        """Current degraded conditions (``key``, ``message``, ``since``, ``scope``); empty when all is well."""
        return session_health(self)

    # -- who is who: the speaker map ---------------------------------------------------------

    def suggest_speaker_map(self) -> pd.DataFrame:
        """Which diarized speaker is the game master and which is which player, as suggestions.

        One row per diarized speaker: ``speaker_id``, ``player``, ``character``, ``role``,
        ``confidence`` (0-1), ``evidence`` and ``given``, from the talk time and narration, the
        names said, self-references, character tags, and what the speaker map and the
        operators' corrections already say (see :func:`livereview.review.speaker_suggestions.suggest_speaker_map`).
        Without a party file only the game master is suggested.
        """
        return suggest_speaker_map(self.view(), self.party, speaker_map=self.speaker_map, corrections=self.overrides())

    def confirm_speaker_map(
        self, suggestions: pd.DataFrame | None = None, min_confidence: float = 0.0
    ) -> dict[str, str]:
        """Write suggested players into the speaker map (``speaker_map.json``); returns the mapping written.

        ``suggestions`` defaults to :meth:`suggest_speaker_map`; rows without a ``player`` or below
        ``min_confidence`` are left out, and so are entries the map already holds.
        """
        suggestions = self.suggest_speaker_map() if suggestions is None else suggestions
        current = self.speaker_map
        chosen = suggestions[suggestions["player"].notna() & (suggestions["confidence"] >= min_confidence)]
        mapping = {
            str(speaker): str(player)
            for speaker, player in zip(chosen["speaker_id"], chosen["player"], strict=True)
            if current.get(str(speaker)) != str(player)
        }
        if mapping:
            self.set_speaker_map(mapping)
        return mapping
