"""Build ``tabletop_utterances.jsonl`` from hand-written scenes and the templates below.

Run ``python -m livereview.data.make_tabletop_utterances`` to regenerate the file; the
output is byte-for-byte reproducible (every random choice is seeded). How the data was
made, and its limits, are described in ``tabletop_utterances.md``.

The scenes are in ``tabletop_scenes.txt``: ``@ <scene id> | <setting> | <table>`` starts
a scene played by a table from :data:`TABLES`; each following line is ``<code> [<who>] | <text>`` where the code
is ``N`` (narration), ``D`` (NPC dialogue, ``who`` is the NPC), ``S`` (character speech),
``A`` (character action), ``M`` (mechanics) or ``T`` (table talk), prefixed with ``X``
for a line mixing in- and out-of-character talk. ``who`` names the character speaking
(or ``GM``); ``N`` and ``D`` lines are always the game master's.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

SEED = 20240611
HELDOUT_FRACTION = 0.2
OUTPUT = Path(__file__).with_name("tabletop_utterances.jsonl")

#: Tables: game master, then (character, player) pairs.
TABLES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "barrow": ("Priya", (("Korrin", "Ben"), ("Sela", "Nadia"), ("Pip", "Theo"), ("Aldric", "Ruth"))),
    "court": ("Marcus", (("Vesna", "Hannah"), ("Oduya", "Kofi"), ("Lark", "Ines"))),
    "kestrel": ("Lena", (("Rhee", "Omar"), ("Zed", "Chloe"), ("Imari", "Felix"), ("Tamsin", "Wei"))),
    "arkwright": ("Graham", (("Edith", "Maya"), ("Jack", "Dev"), ("Ortiz", "Sofia"))),
    "arcade": ("Yuki", (("Razor", "Liam"), ("Nix", "Ava"), ("Switch", "Mateo"), ("Doll", "Grace"))),
    "wastes": ("Rosa", (("Hutch", "Eli"), ("Wren", "Zoe"), ("Marrow", "Jonas"))),
    "widow": ("Tobias", (("Isla", "Priyanka"), ("Fergus", "Owen"), ("Quill", "Lucy"))),
    "perdition": ("Carmen", (("Deacon", "Noah"), ("Sally", "Erin"), ("Cassius", "Hugo"))),
    "velvet": ("Ada", (("Lucien", "Ravi"), ("Marguerite", "Kim"), ("Dex", "Paolo"))),
    "meridian": ("Kai", (("Ironclad", "Mo"), ("Flicker", "Jess"), ("Umbra", "Pat"))),
    "ninewinds": ("Hiro", (("Akane", "Lisa"), ("Tan", "Marco"), ("Shen", "Dara"))),
    "tarsus": ("Bea", (("Ortega", "Sam"), ("Kowalski", "Nina"), ("Thibodeaux", "Raj"))),
    "hollin": ("Nell", (("Brisk", "Ollie"), ("Anwen", "Farah"), ("Tork", "Gus"))),
    "europa": ("Rafael", (("Park", "Joon"), ("Adaeze", "Tola"), ("Sorensen", "Mikkel"))),
}

SCENES = Path(__file__).with_name("tabletop_scenes.txt")

# Out-of-character lines filled from slots and inserted into scenes at seeded positions.
PLAYER_MECHANICS = (
    "I rolled a {n}.",
    "That's a {n} plus {b}, so {nb}.",
    "Does a {n} hit?",
    "Wait, do I add my proficiency to that?",
    "Is that a {skill} check or a {skill2} check?",
    "I have advantage on that, right?",
    "Hold on, let me find my {skill} modifier.",
    "{n} to hit, {d} damage.",
    "What's the difficulty on that?",
    "I'm down to {hp} hit points.",
    "How many {res} do I have left, does anyone remember?",
    "I'll spend a {res} on that.",
    "Okay, my turn's done, next person.",
    "Can I move and still attack this turn?",
    "Is it my turn? Sorry, I wasn't paying attention.",
    "I need to roll a d{die}, who has one?",
    "Put me down for {n} on initiative.",
    "Ugh, a one. Of course it's a one.",
    "Natural twenty! Finally!",
    "Can I reroll that? I think I have a reroll left.",
    "Wait, is that a saving throw or an ability check?",
    "I'll use my reaction for that.",
    "What does the {res} thing do again? Let me read the card.",
    "Does the cover give them a penalty to hit me?",
)
GM_MECHANICS = (
    "Roll {skill} for me.",
    "That's a {skill} check, difficulty {dc}.",
    "Give me a {skill} roll, {who}.",
    "That's a hit. Roll damage.",
    "That misses, sorry.",
    "Okay {who}, you're up.",
    "You take {d} damage.",
    "You get advantage on that one.",
    "Back to the top of the round.",
    "He gets a save against that. Fourteen, he makes it.",
    "Make a {skill} save, everybody.",
    "You need a {dc} or better.",
    "That's a failure, but you can push the roll if you want.",
    "Mark one {res} off your sheet.",
    "Hang on, let me check the rule for that.",
    "It's {who}'s turn, then the monsters go.",
)
TABLE_TALK = (
    "Can someone pass the {food}?",
    "Who wants more {drink}?",
    "The {food} is here, I'll go get the door.",
    "Sorry, I have to take this call, one minute.",
    "Can we take a five minute break?",
    "What time is it? Are we stopping at {time}?",
    "Are we still on for {day} next week?",
    "I can't make it on {day}, I have {thing}.",
    "Wait, what did I miss? I was getting more {food}.",
    "Ha, that's amazing.",
    "Oh no, that's so bad.",
    "Did anyone watch the finale last night? No spoilers.",
    "My dog is barking, sorry, give me a second.",
    "Can you turn the music down a bit?",
    "Is anyone else cold? I'm turning the heating up.",
    "Who's hosting next time?",
    "I forgot my dice at home again, can I borrow some?",
    "Okay, okay, I'm back. Sorry.",
    "Whose turn is it to bring snacks?",
    "I'm going to grab a glass of water, anyone want anything?",
    "Hold on, my laptop is dying, where's the charger?",
    "Let me write that down before I forget.",
    "Remind me, what's the name of the town again?",
    "Did we ever find out who sent that letter?",
    "{who}, you're muted. We can't hear you.",
    "Can you share the map again? It disappeared on my screen.",
    "Sorry, my internet is lagging, can you repeat that?",
    "I'm so tired, this week has been a lot.",
    "This is the best {food} I've had in ages.",
    "Wait, are we recording this?",
)
MIXED_SPEECH = (
    "{ic} And I'm rolling {skill} on that, it's a {n}.",
    "{ic} Is that a {skill} check?",
    "Okay, I say to him, {ic}",
    "{ic} Sorry, I mean, my character says that, not me.",
    "Hang on, let me get my sheet. Okay. {ic}",
)
MIXED_ACTION = (
    "{act} Can I get advantage on that since they're prone?",
    "{act} Wait, does that use my bonus action?",
    "{act} That's a {n} to hit.",
    "Okay, {act} Is that a {skill} check?",
    "{act} Sorry, how many feet can I move again?",
)
ACTION_FRAGMENTS = (
    "I hurl my spear at the rider.",
    "I duck behind the cart and reload.",
    "I grab the rope and swing across.",
    "I throw my torch at the nearest one.",
    "I shove the door shut and hold it.",
    "I sprint for the stairs.",
    "{who} climbs onto the wagon and looks around.",
    "{who} fires at the one by the door.",
    "{who} kneels next to the body and checks for a pulse.",
)
IC_FRAGMENTS = (
    "Stand back, all of you.",
    "Nobody move. I mean it.",
    "You'll regret that, friend.",
    "Tell me where they went and I'll let you go.",
    "We're not here to fight you.",
    "Open the door, slowly.",
    "I've seen worse. Not by much, but I have.",
    "Give me one good reason to trust you.",
    "Keep your voice down, they'll hear us.",
    "We need to get out of here, now.",
)
SLOTS: dict[str, tuple[str, ...]] = {
    "skill": (
        "perception",
        "stealth",
        "athletics",
        "insight",
        "investigation",
        "persuasion",
        "dexterity",
        "wisdom",
        "constitution",
        "survival",
        "medicine",
        "history",
    ),
    "res": ("spell slots", "luck points", "hit dice", "inspiration", "power points", "bennies"),
    "food": ("chips", "pizza", "popcorn", "salsa", "cookies", "dumplings", "hummus", "nachos"),
    "drink": ("tea", "coffee", "soda", "wine", "beer", "lemonade"),
    "time": ("ten", "eleven", "half ten", "midnight", "nine thirty"),
    "day": ("Friday", "Saturday", "Sunday", "Tuesday", "Thursday"),
    "thing": ("a wedding", "work drinks", "my cousin's birthday", "a dentist appointment", "a concert"),
}


def _fill(template: str, rng: random.Random, *, who: str, ic: str = "", act: str = "") -> str:
    n = rng.randint(2, 20)
    b = rng.randint(1, 7)
    values = {
        "n": n,
        "b": b,
        "nb": n + b,
        "d": rng.randint(3, 18),
        "hp": rng.randint(1, 30),
        "dc": rng.choice((10, 12, 13, 15, 18)),
        "die": rng.choice((4, 6, 8, 10, 12)),
        "who": who,
        "ic": ic,
        "act": act,
    }
    for slot, options in SLOTS.items():
        values[slot] = rng.choice(options)
    values["skill2"] = rng.choice([s for s in SLOTS["skill"] if s != values["skill"]])
    return template.format(**values)


_LINE = re.compile(r"^(X?)([NDSAMT])(?: ([^|]+?))? \| (.+)$")
_TYPES = {
    "N": "DM_NARRATION",
    "D": "NPC_DIALOGUE",
    "S": "CHARACTER_SPEECH",
    "A": "CHARACTER_ACTION",
    "M": "MECHANICS",
    "T": "TABLE_TALK",
}


def _record(scene: str, setting: str, table: str, code: str, who: str, text: str, mixed: bool) -> dict[str, Any]:
    game_master, characters = TABLES[table]
    players = dict(characters)
    is_gm = code in "ND" or who == "GM"
    record: dict[str, Any] = {
        "text": text,
        "speaker": game_master if is_gm else players[who],
        "speaker_role": "gm" if is_gm else "player",
        "ic_ooc": "MIXED" if mixed else ("OOC" if code in "MT" else "IC"),
        "segment_type": _TYPES[code],
    }
    if not is_gm:
        record["character"] = who
    if code == "D":
        record["npc"] = who
    record.update(scene=scene, setting=setting, table=table)
    return record


def parse_scenes(text: str) -> list[list[dict[str, Any]]]:
    """The hand-written scenes as lists of records, in order."""
    scenes: list[list[dict[str, Any]]] = []
    header: tuple[str, str, str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@ "):
            scene, setting, table = (part.strip() for part in line[2:].split("|"))
            header = (scene, setting, table)
            scenes.append([])
            continue
        match = _LINE.match(line)
        if match is None or header is None:
            msg = f"{SCENES.name} line {number} does not parse: {line!r}"
            raise ValueError(msg)
        mixed, code, who, body = match.groups()
        scenes[-1].append(_record(*header, code, who or "GM", body, bool(mixed)))
    return scenes


def _interjections(scene: list[dict[str, Any]], rng: random.Random) -> list[tuple[int, dict[str, Any]]]:
    """Two to five templated out-of-character lines for one scene, with their positions."""
    base = scene[0]
    game_master, characters = TABLES[base["table"]]
    made = []
    for _ in range(rng.randint(2, 5)):
        character, player = rng.choice(characters)
        kind = rng.choice(("player_mechanics", "gm_mechanics", "table_talk", "table_talk", "mixed"))
        ic_ooc, segment_type = "OOC", "MECHANICS"
        if kind == "player_mechanics":
            text = _fill(rng.choice(PLAYER_MECHANICS), rng, who=character)
        elif kind == "gm_mechanics":
            text = _fill(rng.choice(GM_MECHANICS), rng, who=rng.choice((character, player)))
        elif kind == "table_talk":
            segment_type = "TABLE_TALK"
            speaker = rng.choice((None, character))
            text = _fill(rng.choice(TABLE_TALK), rng, who=rng.choice([p for _, p in characters]))
            if speaker is None:
                kind = "gm_table_talk"
        elif rng.random() < 0.5:
            ic_ooc, segment_type = "MIXED", "CHARACTER_SPEECH"
            text = _fill(rng.choice(MIXED_SPEECH), rng, who=character, ic=rng.choice(IC_FRAGMENTS))
        else:
            ic_ooc, segment_type = "MIXED", "CHARACTER_ACTION"
            action = rng.choice(ACTION_FRAGMENTS).format(who=character)
            text = _fill(rng.choice(MIXED_ACTION), rng, who=character, act=action)
        is_gm = kind in ("gm_mechanics", "gm_table_talk")
        record: dict[str, Any] = {
            "text": text,
            "speaker": game_master if is_gm else player,
            "speaker_role": "gm" if is_gm else "player",
            "ic_ooc": ic_ooc,
            "segment_type": segment_type,
        }
        if not is_gm:
            record["character"] = character
        record.update(scene=base["scene"], setting=base["setting"], table=base["table"], template=True)
        made.append((rng.randint(1, len(scene)), record))
    return made


def build() -> list[dict[str, Any]]:
    """Every record, scenes in order, with ``split`` and ``order`` set."""
    scenes = parse_scenes(SCENES.read_text(encoding="utf-8"))
    names = sorted(scene[0]["scene"] for scene in scenes)
    heldout = set(random.Random(SEED).sample(names, k=round(HELDOUT_FRACTION * len(names))))
    records: list[dict[str, Any]] = []
    for scene in scenes:
        name = scene[0]["scene"]
        digest = hashlib.sha256(f"{SEED}:{name}".encode()).hexdigest()
        rng = random.Random(int(digest[:16], 16))
        rows = list(scene)
        for position, record in sorted(_interjections(scene, rng), key=lambda item: -item[0]):
            rows.insert(position, record)
        for order, record in enumerate(rows):
            record.setdefault("template", False)
            record.update(order=order, split="heldout" if name in heldout else "train")
            records.append(record)
    return records


def main() -> None:
    records = build()
    with OUTPUT.open("w", encoding="utf-8") as stream:
        for record in records:
            stream.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {len(records)} lines to {OUTPUT}")


if __name__ == "__main__":
    main()
