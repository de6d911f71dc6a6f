"""The live review in a real JupyterLab, driven by chromium, during a real run on the demo recording.

One notebook (written here with nbformat) starts the pipeline in the background and
shows the review; the tests then watch rows stream in, see the rows the global speaker
pass relabels after they were shown marked, play a segment, brush the timeline, edit a
cell through the DOM, set a hostile text, reload the page, and open a viewer's review.
Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import LabServer, NotebookPage, wait_for_records, write_notebook
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"
BROWSER_TEXT = "Edited in the browser"

CELLS = [
    # 0: start the run in the background and show the editor's review
    """import livereview
from livereview.demo import demo_audio_path, demo_party_path
session = livereview.run(demo_audio_path(), out_dir={out!r}, num_speakers=4, party=demo_party_path(),
                         language="en", background=True, progress=False)
review = livereview.review(session, user="ana", role="editor")
review""",
    # 1: a hostile text, set as an override on the last segment of a completed chunk
    f"""done = sorted(session.completed_chunks)
hostile_id = session.segments.query("chunk_id in @done").index[-1]
session.set_override(hostile_id, user="ana", text={HOSTILE!r})
print("HOSTILE-SEGMENT", hostile_id)""",
    # 2: a viewer's review of the same session
    """viewer = livereview.review(session, user="vic", role="viewer")
viewer""",
    # 3: a viewer's edit is refused by the store, and the widget says so
    """try:
    viewer.edit(hostile_id, text="a viewer's words")
except PermissionError as error:
    print("REFUSED", error)""",
    # 4: what the timeline brush selected
    """print("SELECTED", len(review.selected_segment_ids), review.selected_range, session.status)""",
    # 5: the same review shown a second time
    "review",
]


@dataclass
class Live:
    """The notebook page with the running session."""

    notebook: NotebookPage
    out: Path
    artifacts: Path
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    status_at_first_rows: str = ""
    first_rows_after: float = 0.0
    edited_id: str = ""

    @property
    def page(self) -> Any:
        return self.notebook.page

    @property
    def editor(self) -> Any:
        return self.page.locator(".lr-review").first

    @property
    def override_log(self) -> Path:
        return self.out / "demo-session" / "overrides" / "overrides.jsonl"

    def editable_rows_at_top(self, *positions: int) -> list[str]:
        """Scroll the grid to its top and return the ids of the editable rows shown at ``positions``.

        Rows are recycled DOM slots placed with ``translateY``, so their DOM order is not the
        order shown: wait for the top row to be drawn, then read slots by their position.
        """
        self.editor.locator(".lr-viewport").evaluate("el => { el.scrollTop = 0; }")
        self.editor.locator(".lr-row[data-id][style*='translateY(0px)']").wait_for(timeout=30_000)
        editable = self.editor.locator(".lr-row.lr-editable[data-id]")
        placed = editable.evaluate_all(
            "rows => rows.map(r => [new DOMMatrix(getComputedStyle(r).transform).m42, r.dataset.id])"
        )
        ordered = [sid for _, sid in sorted(placed)]
        return [ordered[position] for position in positions]

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.artifacts / f"browser-{name}.png"))

    def search(self, grid: Any, text: str) -> None:
        box = grid.locator("input.lr-search")
        box.fill(text)

    def records(self, condition: Any, count: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until ``count`` override records match ``condition``; return them."""
        return wait_for_records(self.override_log, condition, count, timeout)


@pytest.fixture(scope="module")
def live(lab: LabServer, chromium: Any, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("sessions")
    cells = [CELLS[0].format(out=str(out)), *CELLS[1:]]
    write_notebook(lab.root / "live_review.ipynb", cells)
    page = chromium.new_page(viewport={"width": 1400, "height": 1300})
    state = Live(NotebookPage(page, lab, "live_review.ipynb"), out, artifacts)

    def on_dialog(dialog: Any) -> None:
        state.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: state.errors.append(str(error)))
    state.notebook.open()
    started = time.monotonic()
    state.notebook.run_cell(0)
    state.editor.locator(".lr-row[data-id]").first.wait_for(timeout=600_000)
    state.first_rows_after = time.monotonic() - started
    state.status_at_first_rows = state.editor.locator(".lr-status").get_attribute("data-status")
    state.shot("1-first-rows")
    yield state
    page.close()
    lab.delete_sessions()  # stops the kernel, and the run inside it


def test_rows_stream_in_before_the_run_ends(live: Live) -> None:
    assert live.status_at_first_rows == "running", "rows should appear while the pipeline is still running"
    editor = live.editor
    first = int(editor.get_attribute("data-total"))
    # More rows arrive as chunks complete, without re-running anything.
    live.page.wait_for_function(
        "([el, n]) => Number(el.dataset.total) > n", arg=[editor.element_handle(), first], timeout=600_000
    )
    assert editor.locator(".lr-status").get_attribute("data-status") in {"running", "complete"}
    live.shot("2-streaming")


def test_rows_the_global_pass_relabels_after_they_were_seen_are_marked(live: Live) -> None:
    editor = live.editor
    editor.locator(".lr-status[data-status='complete']").wait_for(timeout=900_000)
    # From the event log: each row's first speaker, its speaker after the global passes
    # (during the run, "recluster", and at its end, "global"), and the rows those passes sent
    # (a pass may change a row's speaker and a later one change it back, or reclassify it).
    before, after, touched = {}, {}, set()
    for line in (live.out / "demo-session" / "events.jsonl").read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["kind"] in ("segments", "update") and event.get("stage") != "override":
            for segment in event["segments"]:
                relabel = event.get("stage") in ("global", "recluster")
                if relabel or segment["segment_id"] not in after:
                    (after if relabel else before)[segment["segment_id"]] = segment["speaker_id"]
                touched |= {segment["segment_id"]} if relabel else set()
    relabelled = {sid for sid, speaker in after.items() if before.get(sid) != speaker}
    assert relabelled, "the global passes relabelled no row of the demo"
    banner = editor.locator(".lr-relabel-banner")
    banner.wait_for(state="visible", timeout=60_000)
    marked = int(editor.get_attribute("data-relabelled"))
    assert 0 < marked <= len(touched)
    changed_fields = r"the speaker(, [\w/ ]+)*"  # and what the reclassification changed
    assert re.match(
        rf"The global speaker pass changed {changed_fields} of {marked} rows? you had already seen", banner.inner_text()
    )
    live.shot("2b-relabelled")
    banner.locator("button.lr-relabel-show").click()  # the "changed for you" filter: the marked rows
    expect(editor).to_have_attribute("data-visible", str(marked))
    rows = editor.locator(".lr-row.lr-relabelled[data-id]")
    rows.first.wait_for(timeout=30_000)  # the filtered rows render after the count is set
    ids = rows.evaluate_all("rows => rows.map((r) => r.dataset.id)")
    assert ids and set(ids) <= touched
    titles = rows.locator(".lr-relabel-mark").evaluate_all("marks => marks.map((m) => m.title)")
    assert all("changed by the global speaker pass after you saw it: " in title for title in titles)
    assert any(f"→ {after[sid]}" in title for sid, title in zip(ids, titles, strict=True) if sid in relabelled)
    first = editor.locator(f".lr-row[data-id='{ids[0]}']")
    first.locator(".lr-time").click()  # looked at: its mark goes
    expect(editor).to_have_attribute("data-relabelled", str(marked - 1))
    editor.locator("input[data-filter='changed']").uncheck()


def test_clicking_a_row_plays_its_clip_and_shows_a_waveform(live: Live) -> None:
    editor = live.editor
    row = editor.locator(".lr-row[data-id]").first
    segment_id = row.get_attribute("data-id")
    row.locator(".lr-time").click()
    # the player of that row, once its clip has arrived (a live update may draw the player again meanwhile)
    player = live.page.locator(f".lr-playback[data-segment='{segment_id}'][data-wav-bytes]").first
    player.wait_for(timeout=60_000)
    assert int(player.get_attribute("data-wav-bytes")) > 44
    assert int(player.get_attribute("data-peaks")) == 480
    # looked up again at each poll: a live update may draw the player again after the clip arrived
    duration = live.page.wait_for_function(
        "(selector) => { const audio = document.querySelector(selector);"
        " return audio && audio.src.startsWith('blob:') && audio.duration > 0 && audio.duration; }",
        arg=f".lr-playback[data-segment='{segment_id}'][data-wav-bytes] audio",
        timeout=60_000,
    ).json_value()
    assert 0.1 < duration < 31
    live.shot("3-playback")


def test_brushing_the_timeline_selects_segments(live: Live) -> None:
    figure = live.page.locator(".lr-timeline").first
    figure.scroll_into_view_if_needed()
    box = figure.bounding_box()
    y = box["y"] + box["height"] * 0.45
    live.page.mouse.move(box["x"] + 120, y)
    live.page.mouse.down()
    live.page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
    live.page.mouse.up()
    chip = live.editor.locator(".lr-range")
    chip.wait_for(state="visible", timeout=30_000)
    live.notebook.run_cell(4)
    text = live.notebook.wait_for_output(4, "SELECTED")
    count, start, end = re.search(r"SELECTED (\d+) \(([\d.]+), ([\d.]+)\)", text).groups()
    assert float(start) < float(end)
    assert int(count) >= 1
    live.shot("4-timeline-range")
    chip.click()  # clears the range
    chip.wait_for(state="hidden", timeout=30_000)


@pytest.fixture(scope="module")
def browser_edit(live: Live) -> str:
    """Edit the text of the first editable row through the DOM; its segment id."""
    editor = live.editor
    editor.locator(".lr-viewport").evaluate("el => { el.scrollTop = 0; }")
    row = editor.locator(".lr-row.lr-editable[data-id]").first
    row.wait_for(timeout=600_000)  # the first chunk is final
    segment_id = row.get_attribute("data-id")
    editor.locator(f".lr-row[data-id='{segment_id}'] [data-field='text']").dblclick()
    text_input = editor.locator("input.lr-text-input")
    text_input.fill(BROWSER_TEXT)
    text_input.press("Enter")
    live.edited_id = segment_id
    return segment_id


def test_edit_in_the_grid_reaches_the_override_log(live: Live, browser_edit: str) -> None:
    (record,) = live.records(lambda r: r["segment_id"] == browser_edit)
    assert (record["field"], record["value"], record["user"], record["role"]) == ("text", BROWSER_TEXT, "ana", "editor")
    cell = live.editor.locator(f".lr-row[data-id='{browser_edit}'] [data-field='text']")
    cell.wait_for(timeout=30_000)
    live.page.wait_for_function(
        "([el, text]) => el.textContent === text && el.classList.contains('lr-edited')",
        arg=[cell.element_handle(), BROWSER_TEXT],
        timeout=30_000,
    )
    badge = live.editor.locator(f".lr-row[data-id='{browser_edit}'] .lr-badge")
    assert badge.get_attribute("data-status") == "edited"
    live.shot("5-edited")


def test_speaker_label_batch_and_undo_through_the_dom(live: Live, browser_edit: str) -> None:
    editor = live.editor
    first, second = live.editable_rows_at_top(1, 2)
    # A new speaker from the dropdown.
    editor.locator(f".lr-row[data-id='{first}'] [data-field='speaker_id']").click()
    editor.locator("select.lr-speaker-select").select_option(label="New speaker…")
    name = editor.locator("input.lr-new-speaker")
    name.fill("Guest")
    name.press("Enter")
    live.records(lambda r: (r["segment_id"], r["field"], r["value"]) == (first, "speaker_id", "Guest"))
    # The IC/OOC toggle.
    toggle = editor.locator(f".lr-row[data-id='{second}'] button.lr-toggle")
    before = toggle.inner_text()
    toggle.click()
    expected = "OOC" if before == "IC" else "IC"
    live.records(lambda r: (r["segment_id"], r["field"], r["value"]) == (second, "ic_ooc", expected))
    # A multi-row edit asks for confirmation, then one click undoes it.
    editor.locator(f".lr-row[data-id='{first}'] .lr-time").click()  # selects this row alone
    editor.locator(f".lr-row[data-id='{second}'] input.lr-select").check()
    expect(editor.locator(".lr-selected-count")).to_have_text("2 selected")  # the count renders on the next frame
    editor.locator("select.lr-batch-field").select_option("confidence_flag")
    editor.locator("button.lr-apply").click()
    confirm = editor.locator(".lr-confirm")
    confirm.wait_for(state="visible", timeout=30_000)
    question = confirm.locator(".lr-confirm-text").inner_text()
    assert question.startswith("Set the uncertain mark to uncertain on 2 rows (")
    assert not live.records(lambda r: r["field"] == "confidence_flag", count=0)
    live.shot("6-confirm-batch")
    editor.locator("button.lr-confirm-apply").click()
    flagged = live.records(lambda r: r["field"] == "confidence_flag" and r["op"] == "set", count=2)
    assert len({r["batch_id"] for r in flagged}) == 1 and {r["segment_id"] for r in flagged} == {first, second}
    editor.locator(f".lr-row[data-id='{first}'] button.lr-flag.lr-on").wait_for(timeout=30_000)
    editor.locator("button.lr-undo").click()
    live.records(lambda r: r["op"] == "revert" and r["reverts"] == flagged[0]["batch_id"], count=2)
    editor.locator(".lr-notice").get_by_text("ana undid their last change: the uncertain mark of 2 rows").wait_for(
        timeout=30_000
    )
    editor.locator(f".lr-row[data-id='{first}'] button.lr-flag:not(.lr-on)").wait_for(timeout=30_000)


def test_segment_text_is_shown_as_text_never_as_html(live: Live, browser_edit: str) -> None:
    live.notebook.run_cell(1)
    output = live.notebook.wait_for_output(1, "HOSTILE-SEGMENT")
    segment_id = re.search(r"HOSTILE-SEGMENT (\S+)", output).group(1)
    assert segment_id != browser_edit
    live.search(live.editor, "onerror")
    cell = live.editor.locator(f".lr-row[data-id='{segment_id}'] [data-field='text']")
    cell.wait_for(timeout=30_000)
    live.page.wait_for_function(
        "([el, text]) => el.textContent === text", arg=[cell.element_handle(), HOSTILE], timeout=30_000
    )
    assert cell.locator("img").count() == 0
    assert live.page.locator(".lr-review img, .lr-playback img").count() == 0
    live.shot("6-hostile-text")
    live.page.wait_for_timeout(500)  # an onerror handler would have fired by now
    assert live.dialogs == []
    live.search(live.editor, "")


def test_reload_shows_the_same_rows_and_the_edit(live: Live, browser_edit: str) -> None:
    before = int(live.editor.get_attribute("data-total"))
    live.notebook.save()
    live.page.reload()
    live.page.wait_for_selector(".lr-review[data-loaded='true']", timeout=120_000)
    editor = live.editor
    assert int(editor.get_attribute("data-total")) >= before
    live.search(editor, BROWSER_TEXT)
    cell = editor.locator(f".lr-row[data-id='{browser_edit}'] [data-field='text']")
    cell.wait_for(timeout=30_000)
    assert cell.text_content() == BROWSER_TEXT
    assert "lr-edited" in cell.get_attribute("class")
    live.search(editor, "")
    live.shot("7-after-reload")
    # The same widget shown again in another cell: a new view with the same rows.
    live.notebook.run_cell(5)
    again = live.notebook.output(5).locator(".lr-review")
    again.locator(".lr-row[data-id]").first.wait_for(timeout=60_000)
    live.page.wait_for_function(
        "([a, b]) => a.dataset.total === b.dataset.total",
        arg=[again.element_handle(), live.editor.element_handle()],
        timeout=30_000,
    )
    live.search(again, BROWSER_TEXT)
    assert again.locator(f".lr-row[data-id='{browser_edit}'] .lr-text.lr-edited").inner_text() == BROWSER_TEXT
    live.search(again, "")
    assert live.dialogs == []


def test_viewer_sees_no_edit_controls_and_is_refused(live: Live) -> None:
    live.notebook.run_cell(2)
    viewer = live.notebook.output(2).locator(".lr-review")
    viewer.locator(".lr-row[data-id]").first.wait_for(timeout=60_000)
    viewer.scroll_into_view_if_needed()
    assert viewer.locator(".lr-toolbar").is_hidden()
    assert viewer.locator(".lr-edit-control").count() == 0
    assert viewer.locator(".lr-row.lr-editable").count() == 0
    assert "read-only" in viewer.locator(".lr-status").inner_text()
    viewer.locator(".lr-row[data-id] [data-field='text']").first.dblclick()
    viewer.locator(".lr-row[data-id] [data-field='speaker_id']").first.click()
    assert viewer.locator(".lr-editor").count() == 0
    live.notebook.run_cell(3)
    output = live.notebook.wait_for_output(3, "REFUSED")
    assert "read-only" in output
    notice = viewer.locator(".lr-notice")
    notice.wait_for(state="visible", timeout=30_000)
    assert "read-only" in notice.inner_text()
    live.shot("8-viewer")
    assert live.errors == [], f"uncaught errors in the page: {live.errors}"


def test_reclassify_button_reruns_the_selected_rows(live: Live) -> None:
    editor = live.editor
    editor.locator(".lr-status[data-status='complete']").wait_for(timeout=600_000)  # reruns need a finished run
    first, second = live.editable_rows_at_top(3, 4)
    editor.locator(f".lr-row[data-id='{first}'] .lr-time").click()
    editor.locator(f".lr-row[data-id='{second}'] input.lr-select").check()
    expect(editor.locator(".lr-selected-count")).to_have_text("2 selected")
    editor.locator("button.lr-rerun-reclassify").click()
    notice = editor.locator(".lr-notice-text").filter(has_text="reclassify r0001 by ana changed ")
    notice.wait_for(timeout=120_000)
    assert re.match(r"reclassify r0001 by ana changed [0-2] of 2 rows[.:]", notice.inner_text())
    history = live.out / "demo-session" / "reruns" / "history.jsonl"
    (record,) = map(json.loads, history.read_text(encoding="utf-8").splitlines())
    assert record["kind"] == "reclassify" and record["user"] == "ana"
    assert sorted(record["segment_ids"]) == sorted([first, second])
    live.shot("9-rerun")
    assert live.errors == [], f"uncaught errors in the page: {live.errors}"
