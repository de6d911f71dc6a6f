"""Reclassify a selection of a completed session, or preview what it would give.

Reclassification refits the classifier with the session's IC/OOC and character
corrections as teaching examples (classifiers with ``with_corrections``; an LLM
classifier gets them as labelled examples in its prompt) and commits through
:func:`livereview.review.reruns.run_rerun`.

Usage
-----
>>> rerun = session.reclassify(segments=("c00002-s000", "c00006-s003"), user="ana")  # doctest: +SKIP
>>> session.preview_reclassify(classifier="keywords")                               # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from livereview.core.roles import EDITOR
from livereview.core.segments import Segment
from livereview.core.selection import select_segments
from livereview.review.reruns import RerunOutcome, run_rerun, selected_copies, selection_parameters
from livereview.review.state import SessionState
from livereview.stages.classify import CLASSIFICATION_COLUMNS, classify_segments, resolve_classifier
from livereview.store.rerun_log import RECLASSIFY, Rerun


def reclassify(
    session: SessionState,
    selection: Any = None,
    *,
    user: str,
    segments: tuple[str, str] | str | None = None,
    chunks: Any = None,
    time: tuple[float, float] | str | None = None,
    classifier: Any = None,
    variant: str | None = None,
    use_corrections: bool = True,
    role: str = EDITOR,
    batch_size: int = 256,
    progress: bool = True,
) -> Rerun:
    """Classify the selected segments again (IC/OOC, segment type, character tag).

    Parameters
    ----------
    session : Session
        A completed session.
    selection, segments, chunks, time
        Exactly one way of choosing segments (see :func:`livereview.core.selection.select_segments`).
    user : str
        Who reruns (kept in the history).
    classifier : str or callable, optional
        The session's classifier by default; any value :func:`~livereview.stages.classify.resolve_classifier`
        accepts (``"keywords"``, ``"llm:<url>:<model>[:<variant>]"``, a callable).
    variant : str, optional
        Prompt variant of an LLM classifier.
    use_corrections : bool
        Teach the classifier the session's IC/OOC and character corrections first.
    batch_size : int
        Segments per classifier call (and per progress step).
    progress : bool
        Show a progress bar.

    Raises
    ------
    SelectionError, ValueError
        A bad selection, classifier or variant; nothing is changed.
    RerunError
        The session is not complete, or another rerun holds its lock.
    """
    ids = select_segments(session.segment_spans(), selection, segments=segments, chunks=chunks, time=time)
    model, corrections = _taught_classifier(session, classifier, variant, use_corrections)
    parameters = selection_parameters(selection, segments, chunks, time) | {
        "classifier": _name(model),
        "corrections": corrections,
        "use_corrections": use_corrections,
    }

    def compute(rerun_id: str) -> RerunOutcome:
        targets = _classifiedselected_copies(session, ids, model, batch_size, progress, f"{rerun_id} reclassify")
        return RerunOutcome(targets, _name(model), getattr(model, "prompt_variant", None), parameters)

    return run_rerun(session, RECLASSIFY, ids, user=user, role=role, parameters=parameters, compute=compute)


def preview_reclassify(
    session: SessionState,
    selection: Any = None,
    *,
    segments: tuple[str, str] | str | None = None,
    chunks: Any = None,
    time: tuple[float, float] | str | None = None,
    classifier: Any = None,
    variant: str | None = None,
    use_corrections: bool = True,
    batch_size: int = 256,
    progress: bool = True,
) -> pd.DataFrame:
    """What :func:`reclassify` would give, without changing anything: for experiments.

    Takes the same selection and classifier arguments (the whole session when no
    selection is given) and returns one row per segment with the
    :data:`~livereview.stages.classify.CLASSIFICATION_COLUMNS`, indexed by segment id.
    """
    spans = session.segment_spans()
    if all(value is None for value in (selection, segments, chunks, time)):
        selection = spans.index.tolist()
    ids = select_segments(spans, selection, segments=segments, chunks=chunks, time=time)
    model, _ = _taught_classifier(session, classifier, variant, use_corrections)
    targets = _classifiedselected_copies(session, ids, model, batch_size, progress, f"preview {_name(model)}")
    return pd.DataFrame(
        {name: [getattr(s, name) for s in targets] for name in CLASSIFICATION_COLUMNS},
        index=pd.Index([s.segment_id for s in targets]),
    )


def correction_examples(session: SessionState) -> pd.DataFrame:
    """The session's IC/OOC and character-tag corrections as classifier teaching examples.

    One row per corrected segment with the columns
    :meth:`~livereview.stages.classify.EmbeddingClassifier.with_corrections` takes (a label the
    operator did not correct is None).
    """
    corrected = session.corrected_values()
    taught = [s for s in session.segment_list() if {"ic_ooc", "character_tag"} & set(corrected.get(s.segment_id, ()))]
    columns = ["text", "speaker_id", "player", "is_game_master", "ic_ooc", "character_tag"]
    if not taught:
        return pd.DataFrame(columns=columns)
    frame = session.classification_frame(taught)
    frame = frame[~frame["context"].astype(bool)].copy()
    frame["ic_ooc"] = [corrected[sid].get("ic_ooc") for sid in frame.index]
    frame["character_tag"] = [corrected[sid].get("character_tag") for sid in frame.index]
    return frame[columns]


def _taught_classifier(
    session: SessionState, classifier: Any, variant: str | None, use_corrections: bool
) -> tuple[Any, int]:
    """The classifier to rerun with, refitted on the session's corrections when asked; and their count."""
    model = _classifier(session, classifier, variant)
    if not use_corrections or not hasattr(model, "with_corrections"):
        return model, 0
    examples = correction_examples(session)
    return (model.with_corrections(examples, session.classification_party()) if len(examples) else model), len(examples)


def _classifiedselected_copies(
    session: SessionState, ids: list[str], model: Any, batch_size: int, progress: bool, desc: str
) -> list[Segment]:
    """Copies of the selected segments, classified by ``model`` run by run of neighbours."""
    targets = selected_copies(session, ids)
    with tqdm(total=len(targets), unit="seg", desc=desc, disable=not progress) as bar:
        for run in _contiguous(session, targets):
            for first in range(0, len(run), batch_size):
                batch = run[first : first + batch_size]
                classify_segments(model, session.classification_frame(batch), session.classification_party(), batch)
                bar.update(len(batch))
    return targets


def _classifier(session: SessionState, classifier: Any, variant: str | None) -> Any:
    model = resolve_classifier(session.options.classifier if classifier is None else classifier)
    if variant is None:
        return model
    if not dataclasses.is_dataclass(model) or not hasattr(model, "prompt_variant"):
        msg = (
            f"classifier {_name(model)} has no prompt variants; variants belong to LLM classifiers "
            "(classifier='llm:<base_url>:<model>')"
        )
        raise ValueError(msg)
    return dataclasses.replace(model, prompt_variant=variant)


def _name(model: Any) -> str:
    return str(getattr(model, "name", getattr(model, "__name__", type(model).__name__)))


def _contiguous(session: SessionState, targets: list[Segment]) -> list[list[Segment]]:
    """``targets`` split into runs of segments that follow each other in the session."""
    position = {s.segment_id: index for index, s in enumerate(session.segment_list())}
    runs: list[list[Segment]] = []
    for segment in targets:
        if runs and position[segment.segment_id] == position[runs[-1][-1].segment_id] + 1:
            runs[-1].append(segment)
        else:
            runs.append([segment])
    return runs
