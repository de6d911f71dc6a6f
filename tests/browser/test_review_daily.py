"""The review as a daily tool, in a real JupyterLab driven by chromium.

One notebook runs the pipeline on the demo recording (to the end) and shows its review,
then builds a two-hour session of made-up rows on the same recording and shows that
review too. The tests correct rows as an operator would (an empty cell, the keys, the
waveform, a split, a merge, a typed boundary, the speaker panel), and check each edit
in ``overrides.jsonl`` and in the merged view read from the session directory by this
process; then they read the long session (times in hours, nothing cut, columns that
scroll sideways, the timeline in h:mm:ss zoomed while the brush still selects).
Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from harness import LabServer, NotebookPage, wait_for_records, write_notebook
from playwright.sync_api import expect

import livereview

pytestmark = pytest.mark.browser

CELLS = [
    # 0: the demo recording, processed to the end, and its review
    """import livereview
from livereview.demo import demo_audio_path, demo_party_path
session = livereview.run(demo_audio_path(), out_dir={out!r}, num_speakers=4, party=demo_party_path(),
                         language="en", progress=False)
review = livereview.review(session, user="ana", role="editor")
review""",
    # 1: a two-hour session of made-up rows (1,440 of them) and its review
    """from livereview.core.options import RunOptions
from livereview.core.segments import CLASSIFIED, Segment, segment_id_for
from livereview.review.run import SessionSink
from livereview.review.session import Session

LINE = "the goblin drops its shield and Morgan raises her staff while Duncan rolls for initiative"
long_session = Session.create(demo_audio_path(), out_dir={out!r}, session_id="two-hours",
                              options=RunOptions(party=str(demo_party_path())))
sink = SessionSink(long_session)
for chunk in range(360):
    sink.commit_chunk({{"chunk_id": chunk, "start": chunk * 20.0, "end": chunk * 20.0 + 20.0}}, [
        Segment(session_id="two-hours", segment_id=segment_id_for(chunk, i), chunk_id=chunk,
                start=chunk * 20.0 + i * 5.0, end=chunk * 20.0 + i * 5.0 + 4.5,
                text=f"{{LINE}}, {{LINE}} ({{chunk}}.{{i}})",
                asr_confidence=0.9, speaker_id=("SPEAKER_00", "SPEAKER_01")[(chunk + i) % 2], speaker_confidence=0.8,
                ic_ooc="IC", ic_ooc_confidence=0.8, character_tag="", status=CLASSIFIED)
        for i in range(4)])
long_session.metadata["audio"]["duration"] = 7200.0  # the made-up rows span two hours
long_review = livereview.review(long_session, user="ana", role="editor", height=300)
long_review""",
    # 2: the finished session copied to another folder, its party file given relative to where it ran (as
    # a user runs from the repository root), and reviewed from a third working directory
    """import json, os, shutil, tempfile
from pathlib import Path
moved = Path(shutil.copytree(session.directory, Path(tempfile.mkdtemp(prefix="elsewhere-")) / "demo-session"))
metadata = json.loads((moved / "metadata.json").read_text())
metadata["config"]["party"] = metadata["party"]["source"] = "livereview/data/demo/party.yaml"
(moved / "metadata.json").write_text(json.dumps(metadata))
os.chdir(tempfile.mkdtemp(prefix="another-folder-"))
reopened = livereview.review(str(moved), user="bo", role="editor")
print(f"copied to {{moved}}")
reopened""",
]


@dataclass
class Daily:
    """The notebook page with the finished demo session and the long one."""

    notebook: NotebookPage
    out: Path
    artifacts: Path
    errors: list[str] = field(default_factory=list)

    @property
    def page(self) -> Any:
        return self.notebook.page

    @property
    def grid(self) -> Any:
        return self.page.locator(".lr-review[data-session='demo-session']").first

    @property
    def directory(self) -> Path:
        return self.out / "demo-session"

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.artifacts / f"daily-{name}.png"))

    def view(self) -> pd.DataFrame:
        """The merged view, read from the session directory by this process."""
        session = livereview.open_session(self.directory)
        try:
            return session.view()
        finally:
            session.close()

    def records(self, condition: Any, count: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until ``count`` override records match ``condition``; return them."""
        return wait_for_records(self.directory / "overrides" / "overrides.jsonl", condition, count, timeout)

    def row(self, segment_id: str, grid: Any = None) -> Any:
        """Scroll ``segment_id``'s row into the grid's view and return it."""
        grid = grid or self.grid
        index = grid_order(self.view()).index.get_loc(segment_id)
        grid.locator(".lr-viewport").evaluate("(el, y) => { el.scrollTop = y; }", max(index * 30 - 60, 0))
        row = grid.locator(f".lr-row[data-id='{segment_id}']")
        row.wait_for(timeout=30_000)
        return row

    def notice(self) -> str:
        return self.grid.locator(".lr-notice-text").inner_text()


@pytest.fixture(scope="module")
def daily(lab: LabServer, chromium: Any, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("daily")
    write_notebook(lab.root / "daily_review.ipynb", [cell.format(out=str(out)) for cell in CELLS])
    page = chromium.new_page(viewport={"width": 1400, "height": 1300})
    state = Daily(NotebookPage(page, lab, "daily_review.ipynb"), out, artifacts)
    page.on("pageerror", lambda error: state.errors.append(str(error)))
    state.notebook.open()
    state.notebook.run_cell(0)
    state.grid.locator(".lr-status[data-status='complete']").wait_for(timeout=900_000)
    state.grid.locator(".lr-row.lr-editable[data-id]").first.wait_for(timeout=60_000)
    yield state
    page.close()
    lab.delete_sessions()


def grid_order(view: pd.DataFrame) -> pd.DataFrame:
    """``view`` in the grid's order: by start, ties by id."""
    return view.loc[sorted(view.index, key=lambda segment_id: (view.at[segment_id, "start"], segment_id))]


def editable_view(daily: Daily) -> pd.DataFrame:
    """The merged view of the finished session (every row editable), in the grid's order."""
    return grid_order(daily.view())


def test_an_empty_cell_is_a_target_and_one_row_needs_no_confirmation(daily: Daily) -> None:
    view = editable_view(daily)
    blank = view.index[view["character_tag"].fillna("") == ""][0]
    cell = daily.row(blank).locator(".lr-character")
    assert cell.bounding_box()["height"] >= 25  # the whole row height, not 0 px
    assert cell.inner_text() == "+ character"
    cell.click()
    editor = daily.grid.locator("input.lr-character-input")
    editor.fill("Mira")
    editor.press("Enter")
    (record,) = daily.records(lambda r: (r["segment_id"], r["field"]) == (blank, "character_tag"))
    assert (record["value"], record["previous_value"], record["user"]) == ("Mira", "", "ana")
    assert daily.view().at[blank, "character_tag"] == "Mira"
    notice = daily.grid.locator(".lr-notice-text")
    expect(notice).to_have_text(re.compile(r"^ana set the character of .* from none to Mira\.$"))
    # The batch control on one selected row writes at once: no confirmation, no Python wording.
    other = next(segment_id for segment_id in view.index if segment_id != blank)
    daily.row(other).locator(".lr-time").click()
    daily.grid.locator("select.lr-batch-field").select_option("ic_ooc")
    daily.grid.locator("select.lr-batch-input").select_option("MIXED")
    daily.grid.locator("button.lr-apply").click()
    daily.records(lambda r: (r["segment_id"], r["field"], r["value"]) == (other, "ic_ooc", "MIXED"))
    assert daily.grid.locator(".lr-confirm").is_hidden()
    expect(daily.grid.locator(".lr-notice-text")).to_contain_text("to MIXED.")
    assert "confirm=True" not in daily.grid.inner_text()
    daily.shot("1-empty-cell")


def test_the_keys_move_label_flag_edit_and_play(daily: Daily) -> None:
    grid = daily.grid
    view = editable_view(daily)
    first, second = view.index[3], view.index[4]
    daily.row(first).locator(".lr-time").click()  # selects and plays it; the grid takes the keys
    expect(grid).to_have_attribute("data-current", first)
    daily.page.keyboard.press("ArrowDown")
    expect(grid).to_have_attribute("data-current", second)
    expect(grid.locator(f".lr-row.lr-selected[data-id='{second}']")).to_be_visible()
    daily.page.keyboard.press("o")
    daily.records(lambda r: (r["segment_id"], r["field"], r["value"]) == (second, "ic_ooc", "OOC"))
    flag = bool(view.at[second, "confidence_flag"])
    daily.page.keyboard.press("?")
    daily.records(lambda r: (r["segment_id"], r["field"], r["value"]) == (second, "confidence_flag", not flag))
    daily.page.keyboard.press("Enter")
    editor = grid.locator("input.lr-text-input")
    expect(editor).to_be_visible()
    daily.page.keyboard.press("Escape")
    expect(editor).to_have_count(0)
    assert not daily.records(lambda r: r["segment_id"] == second and r["field"] == "text", count=0)
    player = daily.page.locator(".lr-playback").first
    daily.page.keyboard.press(" ")  # plays the current row
    expect(player).to_have_attribute("data-segment", second)
    audio = player.locator("audio")
    paused = audio.evaluate("a => a.paused")
    daily.page.keyboard.press(" ")  # and again: pauses or plays it
    daily.page.wait_for_function("([a, was]) => a.paused !== was", arg=[audio.element_handle(), paused])
    daily.page.keyboard.press("ArrowRight")
    expect(grid.locator(".lr-detail")).to_have_attribute("data-id", second)
    daily.page.keyboard.press("ArrowLeft")
    expect(grid.locator(".lr-detail")).to_be_hidden()
    view = daily.view()
    assert view.at[second, "ic_ooc"] == "OOC" and bool(view.at[second, "confidence_flag"]) is (not flag)
    # The keys, in a tooltip.
    grid.locator(".lr-help").hover()
    expect(grid.locator(".lr-help-pop")).to_be_visible()
    expect(grid.locator(".lr-help-pop")).to_contain_text("play or pause the row")
    daily.shot("2-keys")


def test_clicking_the_waveform_seeks_and_dragging_an_edge_moves_the_end(daily: Daily) -> None:
    view = editable_view(daily)
    long = view[(view["end"] - view["start"] >= 2.5) & (view["overridden"].map(len) == 0)]
    segment_id = long.index[0]
    start, end = float(view.at[segment_id, "start"]), float(view.at[segment_id, "end"])
    daily.row(segment_id).locator(".lr-time").click()
    player = daily.page.locator(f".lr-playback[data-segment='{segment_id}']").first
    player.wait_for(timeout=60_000)
    low, high = float(player.get_attribute("data-window-start")), float(player.get_attribute("data-window-end"))
    canvas = player.locator("canvas.lr-wave")
    box = canvas.bounding_box()
    x_of = lambda t: box["x"] + (t - low) / (high - low) * box["width"]  # noqa: E731
    middle = start + (end - start) / 2
    canvas.click(position={"x": x_of(middle) - box["x"], "y": box["height"] / 2})
    player.wait_for(timeout=10_000)
    assert float(player.get_attribute("data-seeked")) == pytest.approx(middle - start, abs=0.25)
    # Drag the end a third of the way back.
    target = end - (end - start) / 3
    y = box["y"] + box["height"] / 2
    daily.page.mouse.move(x_of(end), y)
    daily.page.mouse.down()
    daily.page.mouse.move(x_of(target), y, steps=6)
    daily.page.mouse.up()
    (record,) = daily.records(lambda r: (r["segment_id"], r["field"]) == (segment_id, "end"))
    assert record["value"] == pytest.approx(target, abs=0.25) and record["previous_value"] == pytest.approx(end)
    assert daily.view().at[segment_id, "end"] == record["value"]
    expect(daily.page.locator(f".lr-playback[data-end='{record['value']}']").first).to_be_visible()  # the new clip
    daily.shot("3-waveform")


def test_a_row_splits_at_a_word_and_two_rows_of_one_speaker_merge(daily: Daily) -> None:
    grid = daily.grid
    view = editable_view(daily)
    untouched = view[view["overridden"].map(len) == 0]
    wordy = untouched.index[untouched["text"].str.split().map(len) >= 4][0]
    words = view.at[wordy, "text"].split()
    daily.row(wordy).locator("button.lr-expand").click()
    detail = grid.locator(f".lr-detail[data-id='{wordy}']")
    assert detail.locator(".lr-detail-text").inner_text() == " ".join(words)  # the whole text
    detail.locator(".lr-word[data-word='2']").click()
    detail.locator("button.lr-split").click()
    (record,) = daily.records(lambda r: (r["segment_id"], r["field"]) == (wordy, "split"))
    assert record["value"]["word"] == 2
    view = daily.view()
    assert wordy not in view.index
    assert view.at[f"{wordy}.1", "text"] == " ".join(words[:2]) and view.at[f"{wordy}.2", "text"] == " ".join(words[2:])
    assert view.at[f"{wordy}.1", "end"] == view.at[f"{wordy}.2", "start"] == record["value"]["time"]
    expect(grid.locator(f".lr-row[data-id='{wordy}.2']")).to_be_visible()
    expect(grid.locator(f".lr-row[data-id='{wordy}']")).to_have_count(0)
    expect(grid.locator(".lr-notice-text")).to_contain_text("ana split ")
    # Merge: the first two neighbours of one speaker that nobody touched.
    view = editable_view(daily)
    rows = list(zip(view.index, view["speaker_id"], view["overridden"].map(len), strict=True))
    first, second = next((a[0], b[0]) for a, b in itertools.pairwise(rows) if a[1] == b[1] and not a[2] and not b[2])
    daily.row(second).locator("button.lr-expand").click()
    grid.locator(f".lr-detail[data-id='{second}'] button.lr-merge-previous").click()
    (record,) = daily.records(lambda r: (r["segment_id"], r["field"]) == (second, "merged_into"))
    assert record["value"] == first
    joined = daily.view().loc[f"{first}+{second}"]
    assert joined["text"] == f"{view.at[first, 'text']} {view.at[second, 'text']}"
    assert (joined["start"], joined["end"]) == (view.at[first, "start"], view.at[second, "end"])
    expect(grid.locator(f".lr-row[data-id='{first}+{second}']")).to_be_visible()
    expect(grid.locator(".lr-notice-text")).to_contain_text("ana merged ")
    # A typed boundary on the merged row.
    grid.locator(f".lr-row[data-id='{first}+{second}'] button.lr-expand").click()
    detail = grid.locator(f".lr-detail[data-id='{first}+{second}']")
    new_end = round(float(joined["end"]) - 0.2, 1)
    detail.locator("input.lr-end-input").fill(f"{new_end}")
    detail.locator("button.lr-set-times").click()
    (record,) = daily.records(lambda r: (r["segment_id"], r["field"]) == (f"{first}+{second}", "end"))
    assert record["value"] == new_end and daily.view().at[f"{first}+{second}", "end"] == new_end
    daily.shot("4-split-merge")
    # The exports show the rows as corrected.
    session = livereview.open_session(daily.directory)
    try:
        vtt = session.export_text("vtt")
    finally:
        session.close()
    assert f"{wordy}.2\n" in vtt and f"{first}+{second}\n" in vtt and f"\n{wordy}\n" not in vtt


def test_speakers_are_listed_with_talk_time_and_mapped_in_one_click(daily: Daily) -> None:
    grid = daily.grid
    grid.locator("button.lr-speakers-toggle").click()
    panel = grid.locator(".lr-speakers")
    expect(panel).to_be_visible()
    view = daily.view()
    players = {"Dana", "Alex", "Sam", "Riley"}
    found = sorted(set(view["speaker_id"].dropna()) - players)
    assert found, "the demo's speakers should be found as diarized speakers first"
    speaker = found[0]
    row = panel.locator(f".lr-speaker-row[data-speaker='{speaker}']")
    talk = (view["end"] - view["start"])[view["speaker_id"] == speaker].sum()
    shown = row.locator(".lr-speaker-talk")
    expect(shown).to_have_text(re.compile(rf"^\d+:[0-5]\d talk · {(view['speaker_id'] == speaker).sum()} rows$"))
    minutes, seconds = map(int, shown.inner_text().split(" ")[0].split(":"))
    assert abs(minutes * 60 + seconds - talk) <= 0.6  # whole seconds of the talk time
    row.locator(".lr-speaker-play").click()
    expect(daily.page.locator(".lr-playback").first).to_have_attribute("data-segment", re.compile(r"^c\d{5}-s\d{3}"))
    row.locator(".lr-map-to[data-player='Alex']").click()
    deadline = time.monotonic() + 30
    speaker_map = daily.directory / "speaker_map.json"
    while not (speaker_map.exists() and json.loads(speaker_map.read_text()).get(speaker) == "Alex"):
        assert time.monotonic() < deadline, "the mapping did not reach speaker_map.json"
        time.sleep(0.05)
    expect(grid.locator(".lr-notice-text")).to_have_text(f"ana mapped speaker {speaker} to Alex.")
    mapped = view.index[view["speaker_id"] == speaker][0]
    cell = daily.row(mapped).locator(".lr-speaker")
    expect(cell).to_have_text("Alex")
    assert f"{speaker}, mapped to Alex" in cell.get_attribute("title")
    # The dropdown: players first, then the speakers found.
    cell.click()
    groups = grid.locator("select.lr-speaker-select optgroup").evaluate_all("gs => gs.map((g) => g.label)")
    assert groups[0] == "Players" and "Speakers found, mapped" in groups
    options = grid.locator("select.lr-speaker-select optgroup[label='Players'] option").all_inner_texts()
    assert {"Dana", "Alex", "Sam", "Riley"} <= set(options)
    daily.page.keyboard.press("Escape")
    grid.locator("button.lr-speakers-toggle").click()
    daily.shot("5-speakers")


def test_filters_mean_what_they_say(daily: Daily) -> None:
    grid = daily.grid
    view = daily.view()

    def shown_with(name: str) -> int:
        box = grid.locator(f"input[data-filter='{name}']")
        box.check()
        grid.page.wait_for_timeout(100)
        count = int(grid.get_attribute("data-visible"))
        box.uncheck()
        return count

    assert shown_with("nospeaker") == int(view["speaker_id"].isna().sum())
    assert shown_with("lowspeaker") == int((view["speaker_confidence"] < 0.6).sum())
    assert shown_with("mixed") == int((view["ic_ooc"] == "MIXED").sum()) >= 1
    grid.locator("input.lr-search").fill("no such words anywhere")
    expect(grid.locator(".lr-empty")).to_have_text(re.compile("No segments match the filters and search."))
    grid.locator("button.lr-clear-filters").click()
    expect(grid).to_have_attribute("data-visible", str(len(view)))
    # The confidence column explained.
    assert "asr · spk · ic" in grid.locator(".lr-legend").inner_text()
    assert "transcription (asr), the speaker (spk) and the IC/OOC label (ic)" in grid.locator(".lr-legend").inner_text()


def test_a_long_session_reads_in_hours_with_nothing_cut(daily: Daily) -> None:
    daily.notebook.run_cell(1)
    grid = daily.page.locator(".lr-review[data-session='two-hours']").first
    grid.locator(".lr-row[data-id]").first.wait_for(timeout=120_000)
    grid.scroll_into_view_if_needed()
    grid.locator(".lr-viewport").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    last = grid.locator(".lr-row[data-id='c00359-s003']")
    last.wait_for(timeout=30_000)
    time_cell = last.locator(".lr-time")
    expect(time_cell).to_have_text("1:59:55.0–1:59:59.5")
    assert time_cell.evaluate("el => el.scrollWidth <= el.clientWidth"), "the time column cuts h:mm:ss"
    text = last.locator(".lr-text")
    full = text.evaluate("el => el.title.split('\\n')[0]")
    assert full.endswith("(359.3)") and len(full) > 150  # the whole text on hover
    last.locator("button.lr-expand").click()
    expect(grid.locator(".lr-detail .lr-detail-text")).to_have_text(full)
    # Narrow: 1100 px with the file browser open. Columns give way, then the rows scroll sideways.
    daily.page.set_viewport_size({"width": 1100, "height": 1300})
    daily.page.evaluate("() => window.jupyterapp.shell.activateById('filebrowser')")
    daily.page.locator("#filebrowser").wait_for(state="visible", timeout=30_000)
    viewport = grid.locator(".lr-viewport")
    assert viewport.evaluate("el => el.scrollWidth > el.clientWidth"), "no sideways scroll when narrow"
    widths = last.evaluate("row => [...row.children].map((c) => c.getBoundingClientRect().width)")
    assert min(widths[1:]) >= 78 and widths[5] >= 219, widths  # every column keeps its minimum
    viewport.evaluate("el => { el.scrollLeft = el.scrollWidth; }")
    status = last.locator(".lr-col-7")
    daily.page.wait_for_function(
        "([cell, viewport]) => { const c = cell.getBoundingClientRect(), v = viewport.getBoundingClientRect();"
        " return c.left >= v.left - 1 && c.right <= v.right + 1 && c.width > 100; }",
        arg=[status.element_handle(), viewport.element_handle()],
    )
    header = grid.locator(".lr-header-wrap")
    assert header.evaluate("el => el.scrollLeft") > 0  # the header follows the rows
    daily.shot("6-narrow-long-session")
    viewport.evaluate("el => { el.scrollLeft = 0; }")
    daily.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    daily.page.set_viewport_size({"width": 1400, "height": 1300})


def test_the_timeline_reads_hours_zooms_and_pans_and_still_brushes(daily: Daily) -> None:
    output = daily.notebook.output(1)
    figure = output.locator(".lr-timeline").first
    figure.scroll_into_view_if_needed()
    ticks = lambda: figure.locator("g.axis .tick text").evaluate_all("ts => ts.map((t) => t.textContent)")  # noqa: E731
    daily.page.wait_for_function(
        "(figure) => [...figure.querySelectorAll('g.axis .tick text')].some((t) => t.textContent === '1:00:00')",
        arg=figure.element_handle(),
    )
    output.locator("button.lr-timeline-zoom-in").click()
    window = output.locator(".lr-timeline-window")
    expect(window).to_have_text("showing 0:30:00–1:30:00 of 2:00:00")
    daily.page.wait_for_function(
        "(figure) => [...figure.querySelectorAll('g.axis .tick text')].some((t) => t.textContent === '0:40:00')",
        arg=figure.element_handle(),
    )
    times = [tick for tick in ticks() if ":" in tick]  # the time axis (the other axis names speakers)
    assert len(times) >= 4 and all(re.fullmatch(r"\d:\d\d:\d\d", tick) for tick in times), times
    assert min(times) >= "0:30:00" and max(times) <= "1:30:00"
    output.locator("button.lr-timeline-pan-right").click()
    expect(window).to_have_text("showing 1:00:00–2:00:00 of 2:00:00")
    # The brush on the zoomed axis selects in recording time.
    figure.scroll_into_view_if_needed()  # the zoom controls' clicks may have scrolled the page
    box = figure.bounding_box()
    left, right = box["x"] + 110, box["x"] + box["width"] - 16  # the figure's margins
    y = box["y"] + box["height"] * 0.45
    daily.page.mouse.move(left + (right - left) * 0.25, y)
    daily.page.mouse.down()
    daily.page.mouse.move(left + (right - left) * 0.5, y, steps=8)
    daily.page.mouse.up()
    chip = daily.page.locator(".lr-review[data-session='two-hours'] .lr-range")
    chip.wait_for(state="visible", timeout=30_000)
    start, end = re.search(r"range (\S+)–(\S+) ✕", chip.inner_text()).groups()
    to_seconds = lambda text: sum(float(p) * 60**i for i, p in enumerate(reversed(text.split(":"))))  # noqa: E731
    assert 3600 + 900 - 60 <= to_seconds(start) < to_seconds(end) <= 3600 + 1800 + 60
    # The selected rows are marked on their lanes.
    daily.page.wait_for_function(
        """(figure) => [...figure.querySelectorAll('path')].some((p) =>
             getComputedStyle(p).stroke === 'rgb(249, 168, 37)' && (p.getAttribute('d') || '').length > 20)""",
        arg=figure.element_handle(),
    )
    daily.shot("7-timeline-zoomed")
    chip.click()
    assert daily.errors == [], f"uncaught errors in the page: {daily.errors}"


def test_a_session_reopened_from_another_folder_is_complete_and_editable(daily: Daily) -> None:
    daily.notebook.run_cell(2)
    moved = Path(re.search(r"copied to (\S+)", daily.notebook.wait_for_output(2, "copied to")).group(1))
    grid = daily.notebook.output(2).locator(".lr-review").first
    status = grid.locator(".lr-status[data-status='complete']")
    status.wait_for(timeout=120_000)
    duration = json.loads((moved / "metadata.json").read_text())["audio"]["duration"]
    clock = f"{int(duration // 60)}:{duration % 60:04.1f}"
    expect(status).to_contain_text(f"processed {clock} of {clock} (100%)")
    assert "Error" not in daily.notebook.output(2).inner_text()  # no traceback, no red FileNotFoundError
    view = editable_view(daily)
    blank = view.index[view["character_tag"].fillna("") == ""][-1]
    index = grid_order(view).index.get_loc(blank)
    grid.locator(".lr-viewport").evaluate("(el, y) => { el.scrollTop = y; }", max(index * 30 - 60, 0))
    row = grid.locator(f".lr-row.lr-editable[data-id='{blank}']")
    row.wait_for(timeout=30_000)
    row.locator(".lr-character").click()
    editor = grid.locator("input.lr-character-input")
    options = "list => [...list.options].map((o) => o.value)"
    assert {"Morgan", "Duncan", "Flint"} <= set(editor.evaluate(f"el => ({options})(el.list)"))
    # The game master and the players come from the party file only: read from the session's own copy.
    players = grid.locator("datalist[id^='lr-speakers-']").evaluate(options)
    assert {"Dana", "Alex", "Sam", "Riley"} <= set(players), players
    editor.fill("Flint")
    editor.press("Enter")
    log = moved / "overrides" / "overrides.jsonl"
    (record,) = wait_for_records(log, lambda r: (r["segment_id"], r["user"]) == (blank, "bo"), 1, 60.0)
    assert (record["field"], record["value"]) == ("character_tag", "Flint")
    assert daily.errors == [], f"uncaught errors in the page: {daily.errors}"
