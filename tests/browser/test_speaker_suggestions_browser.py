"""The suggested speaker map in the review's speaker panel, in a real JupyterLab driven by chromium.

A copy of the processed demo session is reviewed in a notebook; the speaker panel offers each
diarized speaker not yet mapped its suggested player (``Session.suggest_speaker_map``), and one
click on "confirm" writes it to ``speaker_map.json`` through the same mapping the player buttons
use. A viewer sees the suggestions without the button. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from harness import LabServer, NotebookPage, write_notebook
from playwright.sync_api import expect

import livereview

pytestmark = pytest.mark.browser

CELLS = [
    """import livereview
review = livereview.review({directory!r}, user="ana", role="editor")
review""",
    """viewer = livereview.review({directory!r}, user="vic", role="viewer")
viewer""",
]


def wait_for_mapping(path: Path, speaker: str, player: str, timeout: float = 30.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        mapping = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        if mapping.get(speaker) == player:
            return mapping
        assert time.monotonic() < deadline, f"{speaker} -> {player} did not reach {path}: {mapping}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reviewed(
    demo_session: livereview.Session, lab: LabServer, chromium: Any, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    directory = Path(shutil.copytree(demo_session.directory, tmp_path_factory.mktemp("suggest") / "demo-session"))
    write_notebook(lab.root / "speaker_suggestions.ipynb", [cell.format(directory=str(directory)) for cell in CELLS])
    page = chromium.new_page(viewport={"width": 1400, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    notebook = NotebookPage(page, lab, "speaker_suggestions.ipynb").open()
    notebook.run_cell(0)
    grid = notebook.output(0).locator(".lr-review").first
    grid.locator(".lr-status[data-status='complete']").wait_for(timeout=120_000)
    yield notebook, grid, directory, errors
    page.close()
    lab.delete_sessions()


def test_a_suggested_player_is_confirmed_in_one_click(reviewed: Any, artifacts: Path) -> None:
    notebook, grid, directory, errors = reviewed
    session = livereview.open_session(directory)
    try:
        table = session.suggest_speaker_map()
    finally:
        session.close()
    players = table[table["player"].notna() & (table["role"] == "player")]
    assert len(players) >= 3, table.to_string()
    toggle = grid.locator("button.lr-speakers-toggle")
    expect(toggle).to_have_text(f"Speakers… ({table['player'].notna().sum()} suggested)")
    toggle.click()
    panel = grid.locator(".lr-speakers")
    expect(panel).to_be_visible()
    choice = players.iloc[0]
    speaker, player, character = choice["speaker_id"], choice["player"], choice["character"]
    offer = panel.locator(f".lr-speaker-row[data-speaker='{speaker}'] .lr-suggestion")
    expect(offer.locator(".lr-suggestion-text")).to_have_text(f"Suggested: {player} ({character})")
    expect(offer.locator(".lr-suggestion-confidence")).to_have_text(f"{round(100 * choice['confidence'])}%")
    expect(offer.locator(".lr-suggestion-evidence")).to_have_text(choice["evidence"])
    notebook.page.screenshot(path=str(artifacts / "speaker-suggestions-1-offered.png"))
    offer.locator("button.lr-suggestion-confirm").click()
    mapping = wait_for_mapping(directory / "speaker_map.json", speaker, player)
    assert mapping == {speaker: player}  # only the speaker confirmed
    expect(grid.locator(".lr-notice-text")).to_have_text(f"ana mapped speaker {speaker} to {player}.")
    row = panel.locator(f".lr-speaker-row[data-speaker='{speaker}']")
    expect(row.locator(".lr-speaker-mapped")).to_have_text(f"→ {player}")
    expect(row.locator(".lr-suggestion")).to_have_count(0)  # mapped: nothing left to confirm
    expect(toggle).to_have_text(re.compile(rf"^Speakers… \({table['player'].notna().sum() - 1} suggested\)$"))
    # The rows show the player now.
    expect(grid.locator(f".lr-row .lr-speaker[title^='{speaker}, mapped to {player}']").first).to_have_text(player)
    # The game master's suggestion too.
    gm = table[table["role"] == "game master"].iloc[0]
    gm_offer = panel.locator(f".lr-speaker-row[data-speaker='{gm['speaker_id']}'] .lr-suggestion")
    expect(gm_offer.locator(".lr-suggestion-text")).to_have_text("Suggested: Dana (game master)")
    gm_offer.locator("button.lr-suggestion-confirm").click()
    wait_for_mapping(directory / "speaker_map.json", gm["speaker_id"], "Dana")
    notebook.page.screenshot(path=str(artifacts / "speaker-suggestions-2-confirmed.png"))
    assert errors == [], f"uncaught errors in the page: {errors}"


def test_a_viewer_sees_the_suggestions_without_a_confirm_button(reviewed: Any) -> None:
    notebook, _, directory, errors = reviewed
    notebook.run_cell(1)
    grid = notebook.output(1).locator(".lr-review").first
    grid.locator(".lr-status[data-status='complete']").wait_for(timeout=120_000)
    grid.locator("button.lr-speakers-toggle").click()
    offers = grid.locator(".lr-speakers .lr-suggestion")
    expect(offers.first).to_be_visible()
    mapped = set(json.loads((directory / "speaker_map.json").read_text(encoding="utf-8")))
    shown = set(offers.evaluate_all("nodes => nodes.map((n) => n.dataset.speaker)"))
    assert shown and not shown & mapped
    expect(grid.locator(".lr-speakers button.lr-suggestion-confirm")).to_have_count(0)
    assert errors == [], f"uncaught errors in the page: {errors}"
