"""The default IC/OOC classifier: quality on held-out scenes, tags, determinism, corrections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from livereview.core.party import Character, Npc, Party
from livereview.core.segments import IC_OOC_LABELS, SEGMENT_TYPES
from livereview.data import make_tabletop_utterances
from livereview.stages.cache import CACHE_DIR_VARIABLE
from livereview.stages.classify import (
    CLASSIFICATION_COLUMNS,
    NEEDS_ATTENTION_THRESHOLD,
    EmbeddingClassifier,
    build_default_classifier,
    character_tags,
    decide,
    default_classifier,
    keyword_classifier,
    npc_name,
    refit,
    resolve_classifier,
)
from livereview.stages.classify.features import FEATURE_NAMES, cue_features, game_master_flags
from livereview.stages.classify.llm import LLMClassifier
from livereview.stages.classify.training import TRAINING_DATA, load_training_data, table_parties

# Measured on the held-out scenes (196 lines): IC/OOC accuracy 0.857, macro-F1 0.837;
# segment type accuracy 0.801, macro-F1 0.800. The floors leave 5 to 10 lines of slack.
IC_OOC_ACCURACY_FLOOR = 0.83
IC_OOC_MACRO_F1_FLOOR = 0.80
SEGMENT_TYPE_ACCURACY_FLOOR = 0.75

PARTY = Party.from_dict(
    {
        "game_master": "Dana",
        "characters": [
            {"name": "Mira", "player": "Alex", "aliases": ["Mi"]},
            {"name": "Brannoc", "player": "Sam"},
        ],
    }
)


def frame(rows: list[tuple[str, str]], party: Party | None = PARTY) -> pd.DataFrame:
    """A classifier input from (player, text) rows, shaped like the pipeline's."""
    data = pd.DataFrame(rows, columns=["player", "text"])
    data.insert(0, "segment_id", [f"c00000-s{i:03d}" for i in range(len(data))])
    data["start"] = np.arange(len(data), dtype=float) * 3
    data["end"] = data["start"] + 2.5
    data["speaker_id"] = data["player"].map(lambda p: f"SPEAKER_{p.upper()}")
    data["is_game_master"] = data["player"].map(party.is_game_master) if party else False
    data["context"] = False
    return data.set_index(pd.Index(data["segment_id"], name=None))


@pytest.fixture(scope="module")
def classifier() -> EmbeddingClassifier:
    return default_classifier()


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return load_training_data()


# -- the shipped data ---------------------------------------------------------------------------


def test_training_data_is_large_varied_and_split_by_scene(data: pd.DataFrame) -> None:
    assert len(data) >= 600
    assert set(data["ic_ooc"]) == set(IC_OOC_LABELS)
    assert set(data["segment_type"]) == set(SEGMENT_TYPES)
    assert data["setting"].nunique() >= 8
    assert set(data["speaker_role"]) == {"gm", "player"}
    heldout = data["split"] == "heldout"
    assert 0.15 <= heldout.mean() <= 0.3
    assert not set(data.loc[heldout, "scene"]) & set(data.loc[~heldout, "scene"])


def test_training_data_file_is_reproducible() -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in make_tabletop_utterances.build()]
    shipped = TRAINING_DATA.read_text(encoding="utf-8").splitlines()
    assert lines == shipped


# -- quality ------------------------------------------------------------------------------------


def test_heldout_scenes_reach_the_measured_floor(classifier: EmbeddingClassifier, data: pd.DataFrame) -> None:
    parties = table_parties(data)
    heldout = data[data["split"] == "heldout"]
    predicted = pd.concat(
        classifier(scene.sort_values("order"), parties[scene["table"].iloc[0]])
        for _, scene in heldout.groupby("scene", sort=False)
    ).loc[heldout.index]
    assert accuracy_score(heldout["ic_ooc"], predicted["ic_ooc"]) >= IC_OOC_ACCURACY_FLOOR
    assert f1_score(heldout["ic_ooc"], predicted["ic_ooc"], average="macro") >= IC_OOC_MACRO_F1_FLOOR
    assert accuracy_score(heldout["segment_type"], predicted["segment_type"]) >= SEGMENT_TYPE_ACCURACY_FLOOR
    # Low confidence must mean "look at this": rows under the threshold are wrong far more often.
    right = (predicted["ic_ooc"] == heldout["ic_ooc"]).to_numpy()
    low = predicted["ic_ooc_confidence"].to_numpy() < NEEDS_ATTENTION_THRESHOLD
    assert right[low].mean() < right[~low].mean() - 0.2


def test_output_columns_index_and_values(classifier: EmbeddingClassifier) -> None:
    rows = frame([("Dana", "The bridge sways in the wind."), ("Sam", "Can you pass the chips?")])
    result = classifier(rows, PARTY)
    assert list(result.columns) == list(CLASSIFICATION_COLUMNS)
    assert result.index.equals(rows.index)
    assert result["ic_ooc"].isin(IC_OOC_LABELS).all()
    assert result["segment_type"].isin(SEGMENT_TYPES).all()
    assert result["ic_ooc_confidence"].between(0, 1).all()
    assert (result["classifier"] == "minilm-realtalk-logreg-2.0").all()
    assert classifier(rows.iloc[:0], PARTY).empty


def test_typical_lines_get_the_obvious_labels(classifier: EmbeddingClassifier) -> None:
    rows = frame(
        [
            ("Dana", "The innkeeper wipes a mug and looks up as you come in out of the rain."),
            ("Dana", "Welcome to the Copper Kettle. I'm Berta, and I don't give credit."),
            ("Alex", "We'll take a room for the night, and whatever's in the pot."),
            ("Sam", "I sit down by the fire and pull off my wet boots."),
            ("Sam", "Hey, can someone pass the pretzels?"),
            ("Alex", "I rolled a seventeen on my insight check, plus four."),
        ]
    )
    result = classifier(rows, PARTY)
    assert result["ic_ooc"].tolist() == ["IC", "IC", "IC", "IC", "OOC", "OOC"]
    assert result["segment_type"].tolist() == [
        "DM_NARRATION",
        "NPC_DIALOGUE",
        "CHARACTER_SPEECH",
        "CHARACTER_ACTION",
        "TABLE_TALK",
        "MECHANICS",
    ]
    assert result["character_tag"].tolist() == ["DM", "Berta", "Mira", "Brannoc", "", ""]


def test_same_input_same_output(classifier: EmbeddingClassifier) -> None:
    rows = frame([("Dana", "Roll for initiative, everyone."), ("Alex", "Mira ducks behind the altar.")])
    first = classifier(rows, PARTY)
    classifier.encoder._cache.clear()
    pd.testing.assert_frame_equal(classifier(rows, PARTY), first)


def test_unknown_speakers_without_a_party_still_get_narration(classifier: EmbeddingClassifier) -> None:
    # Without a party the pipeline cannot know the game master and marks everyone False.
    rows = frame([("x", "The corridor ends at a rusted iron door, and behind it something breathes.")], party=None)
    result = classifier(rows, None)
    assert result["segment_type"].iloc[0] == "DM_NARRATION"
    assert result["character_tag"].iloc[0] == "DM"


def test_speaker_roles_are_unknown_unless_something_tells_them() -> None:
    rows = frame([("Dana", "a"), ("Alex", "b"), ("SPEAKER_07", "c")])
    np.testing.assert_array_equal(game_master_flags(rows, PARTY), [1.0, 0.0, np.nan])
    # The pipeline marks everyone False when there is no party: that says nothing.
    np.testing.assert_array_equal(game_master_flags(rows.assign(is_game_master=False), None), [np.nan] * 3)
    marked = rows.assign(is_game_master=[True, False, None])
    np.testing.assert_array_equal(game_master_flags(marked, None), [1.0, 0.0, np.nan])


# -- tags and consistency -----------------------------------------------------------------------


def test_a_sentence_inside_an_open_quotation_is_marked_as_such() -> None:
    rows = frame(
        [
            ("Dana", '"A liaison, if you will.'),
            ("Dana", 'Mertin, would you get the other hopeful?"'),
            ("Dana", "He gets up and knocks on a door."),
            ("Dana", '"Come in.'),
            ("Alex", "Hello?"),  # another speaker: whatever was open is closed
        ]
    )
    column = FEATURE_NAMES.index("inside_quote")
    assert cue_features(rows, PARTY)[:, column].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Welcome, friends. My name is Tomas Reed and I run this place.", "Tomas Reed"),
        ("Heavens, yes. Captain Dellan, at your service.", "Captain Dellan"),
        ("I am Brother Aldous, keeper of this shrine.", "Brother Aldous"),
        ("The old innkeeper leans over and says, not tonight.", None),
        ("The innkeeper says the rooms are full.", "Innkeeper"),
        ("The stranger in the corner whispers something.", "Stranger"),
        ("Mother Sabine asks who sent you.", "Mother Sabine"),
        ("I'm not afraid of you.", None),
        ("I'm Mira, remember?", None),  # a party name is never an NPC
    ],
)
def test_npc_names_come_from_introductions_and_attributions(text: str, name: str | None) -> None:
    assert npc_name(text, PARTY) == name


def test_the_npc_tracker_follows_a_real_conversation() -> None:
    """Cues as real table talk has them (Critical Role, C1E020 and C2E006)."""
    party = Party("Matt", (Character("Kashaw", "Will"), Character("Thorbir", "Wil")), npcs=(Npc("Vanessa"),))
    rows = frame(
        [
            ("Matt", '"This is your team." And Vanessa chuckles to herself.'),
            ("Matt", "\"I'm sorry. This is what you'll be dealing with today.\""),
            ("Wil", "I'm sorry, where is the team?"),
            ("Matt", '"Now Thorbir, play nice."'),  # speaking to a player character: still Vanessa
            ("Matt", 'Mertin says, "Of course, my lady."'),  # a name never heard before
            ("Will", "Thank you, Vanessa."),
            ("Matt", '"You are welcome."'),
            ("Matt", "Vanessa turns around and leaves."),
            ("Matt", '"Y\'all want pickles?"'),
        ],
        party,
    )
    types = ["DM_NARRATION", "NPC_DIALOGUE", "CHARACTER_SPEECH", "NPC_DIALOGUE", "NPC_DIALOGUE"]
    types += ["CHARACTER_SPEECH", "NPC_DIALOGUE", "DM_NARRATION", "NPC_DIALOGUE"]
    assert character_tags(rows, types, party) == [
        "DM", "Vanessa", "Thorbir", "Vanessa", "Mertin", "Kashaw", "Vanessa", "DM", "NPC"
    ]  # fmt: skip
    assert character_tags(rows, types, None)[1] == "Vanessa"  # the narration names her, party or not


def test_character_tags_follow_the_rules() -> None:
    rows = frame(
        [
            ("Dana", "The guard at the gate growls at you."),
            ("Dana", "State your business."),
            ("Alex", "We're here to see the duke."),
            ("Dana", "The duke sees nobody."),
            ("Dana", "Behind him, the gate creaks open."),
            ("Dana", "Who let you in?"),
            ("Dana", "The guard shrugs and walks away."),
            ("Dana", "Move along."),
            ("Sam", "I rolled a twelve."),
            ("Alex", "Pizza's here!"),
        ]
    )
    types = [
        "DM_NARRATION",
        "NPC_DIALOGUE",
        "CHARACTER_SPEECH",
        "NPC_DIALOGUE",
        "DM_NARRATION",
        "NPC_DIALOGUE",
        "DM_NARRATION",
        "NPC_DIALOGUE",
        "MECHANICS",
        "TABLE_TALK",
    ]
    # the guard stays the one speaking through narration, until he walks away
    assert character_tags(rows, types, PARTY) == ["DM", "Guard", "Mira", "Guard", "DM", "Guard", "DM", "NPC", "", ""]
    assert character_tags(rows, types, None)[2] == ""


def test_decide_keeps_labels_consistent_with_each_other_and_the_speaker() -> None:
    ic_classes = ("IC", "MIXED", "OOC")
    type_classes = tuple(sorted(SEGMENT_TYPES))
    ic = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.8, 0.1, 0.1]])
    table_talk = np.array([[0.0 if c != "TABLE_TALK" else 0.9 for c in type_classes]] * 4) + 0.01
    speech = np.array([[0.6 if c == "CHARACTER_SPEECH" else 0.08 for c in type_classes]])
    types = np.vstack([table_talk[:3], speech])
    labels, confidence, chosen = decide(ic_classes, ic, type_classes, types, np.array([0.0, 1.0, np.nan, 1.0]))
    assert labels == ["IC", "OOC", "MIXED", "IC"]
    assert confidence.tolist() == [0.9, 0.8, 0.7, 0.8]
    assert chosen[0] in ("CHARACTER_SPEECH", "CHARACTER_ACTION")  # IC player line: never table talk
    assert chosen[1] == "TABLE_TALK"
    assert chosen[2] == "TABLE_TALK"
    assert chosen[3] in ("DM_NARRATION", "NPC_DIALOGUE")  # the game master has no character


# -- corrections --------------------------------------------------------------------------------

CARD_TEXT_CORRECTIONS = [
    ("Alex", "Card text: Iron Skin. Your flesh hardens like forged metal, and blades glance off you like rain."),
    ("Sam", "Card text: Wolf's Howl. Your cry echoes across the field and your allies feel their courage return."),
    ("Alex", "Card text: Ember Veil. A curtain of sparks rises around you and hides you from unfriendly eyes."),
    ("Sam", "Card text: Stone Roots. Your feet sink into the earth and nothing can move you from where you stand."),
    ("Alex", "Card text: Quicksilver. Your body blurs and you are suddenly somewhere else on the battlefield."),
]
UNEDITED_CARD_TEXT = [
    ("Sam", "Card text: Storm Call. Thunder rolls overhead and lightning answers when you raise your hand."),
    ("Alex", "Card text: Mirror Mask. Your face ripples and takes on the features of the last person you touched."),
    ("Sam", "Card text: Bramble Ward. Thorned vines burst from the ground and coil around you like a fence."),
    ("Alex", "Card text: Frost Lance. A spear of ice forms in your hand and flies straight at your foe."),
]
CONTROLS = [
    ("Alex", "I draw my sword and step between the merchant and the thugs."),
    ("Dana", "The bridge groans under your weight, and far below the river roars."),
]


def corrections(rows: list[tuple[str, str]], **labels: str) -> pd.DataFrame:
    examples = frame(rows)[["text", "is_game_master", "player"]].reset_index(drop=True)
    return examples.assign(**labels)


def test_corrections_change_predictions_on_similar_unedited_segments(classifier: EmbeddingClassifier) -> None:
    # A table reads its ability cards aloud: rules text (OOC) that sounds like narration.
    examples = corrections(CARD_TEXT_CORRECTIONS, ic_ooc="OOC", character_tag="", segment_type="MECHANICS")
    rows = frame(UNEDITED_CARD_TEXT + CONTROLS)
    before = classifier(rows, PARTY)
    corrected = classifier.with_corrections(examples, PARTY)
    after = corrected(rows, PARTY)
    assert (before["ic_ooc"].iloc[:4] == "IC").all()
    assert (after["ic_ooc"].iloc[:4] == "OOC").sum() >= 2
    assert (after["segment_type"].iloc[:4] == "MECHANICS").sum() >= 2
    ooc = list(classifier.ic_ooc_head.classes).index("OOC")
    rise = corrected.probabilities(rows, PARTY)[0][:4, ooc] - classifier.probabilities(rows, PARTY)[0][:4, ooc]
    assert (rise > 0).all() and (rise > 0.25).sum() >= 2
    assert after["ic_ooc"].iloc[4:].tolist() == ["IC", "IC"]
    assert (after["classifier"] == "minilm-realtalk-logreg-2.0+5corrections").all()
    # The original is untouched, and refit() is the same operation.
    pd.testing.assert_frame_equal(classifier(rows, PARTY), before)
    pd.testing.assert_frame_equal(refit(classifier, examples, PARTY)(rows, PARTY), after)


def test_corrected_npc_names_are_lent_to_similar_unnamed_lines(classifier: EmbeddingClassifier) -> None:
    examples = corrections(
        [
            ("Dana", "Another round of ale for the heroes of the Copper Kettle? That'll be two silver."),
            ("Dana", "No credit at the Copper Kettle, dearie. Coin on the counter first."),
        ],
        ic_ooc="IC",
        character_tag="Berta",
    )
    rows = frame(
        [("Alex", "We'd like some food, please."), ("Dana", "Ale at the Copper Kettle is two silver a mug, dearie.")]
    )
    assert classifier(rows, PARTY)["character_tag"].tolist()[1] != "Berta"  # nothing names her yet
    corrected = classifier.with_corrections(examples, PARTY)
    result = corrected(rows, PARTY)
    assert result["segment_type"].iloc[1] == "NPC_DIALOGUE"
    assert result["character_tag"].tolist() == ["Mira", "Berta"]


def test_corrections_are_checked(classifier: EmbeddingClassifier) -> None:
    with pytest.raises(ValueError, match="missing character_tag"):
        classifier.with_corrections(
            pd.DataFrame({"text": ["x"], "is_game_master": [False], "player": ["Alex"], "ic_ooc": ["IC"]})
        )
    with pytest.raises(ValueError, match="correction ic_ooc INCHARACTER unknown; use one of IC, OOC, MIXED"):
        classifier.with_corrections(corrections([("Alex", "hi")], ic_ooc="INCHARACTER", character_tag="Mira"))


# -- cache and resolution -----------------------------------------------------------------------


def test_fitted_heads_are_cached_on_disk_and_reproducible(
    classifier: EmbeddingClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "first"))
    fitted = build_default_classifier()
    cached = list((tmp_path / "first" / "classify").glob("heads-*.npz"))
    assert len(cached) == 1
    loaded = build_default_classifier()
    np.testing.assert_array_equal(loaded.ic_ooc_head.coef, fitted.ic_ooc_head.coef)
    assert loaded.segment_type_head.temperature == fitted.segment_type_head.temperature
    np.testing.assert_array_equal(loaded.training.x, fitted.training.x)
    # Fitting again from scratch, embeddings included, gives the same heads.
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "second"))
    classifier.encoder._cache.clear()
    refitted = build_default_classifier()
    np.testing.assert_array_equal(refitted.ic_ooc_head.coef, fitted.ic_ooc_head.coef)
    np.testing.assert_array_equal(refitted.segment_type_head.coef, fitted.segment_type_head.coef)


def test_resolve_classifier() -> None:
    assert resolve_classifier(None) is resolve_classifier("default") is default_classifier()
    assert resolve_classifier("keywords") is keyword_classifier

    def custom(frame: pd.DataFrame, party: object) -> pd.DataFrame:
        return frame

    assert resolve_classifier(custom) is custom
    llm = resolve_classifier("llm:http://127.0.0.1:11434/v1:llama3:8b:terse")
    assert isinstance(llm, LLMClassifier)
    assert (llm.base_url, llm.model, llm.prompt_variant) == ("http://127.0.0.1:11434/v1", "llama3:8b", "terse")
    with pytest.raises(ValueError, match="needs a server URL and a model"):
        resolve_classifier("llm")
    with pytest.raises(ValueError, match=r"unknown classifier 'bert'; pass None or 'default'"):
        resolve_classifier("bert")


def test_keyword_baseline_still_works() -> None:
    rows = frame([("Dana", "The cave is dark."), ("Sam", "I rolled a d20 for initiative.")])
    result = keyword_classifier(rows, PARTY)
    assert result["ic_ooc"].tolist() == ["IC", "OOC"]
    assert result["segment_type"].tolist() == ["DM_NARRATION", "MECHANICS"]
    assert result["character_tag"].tolist() == ["DM", ""]
