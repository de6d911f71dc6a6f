"""The demo script: who sits at the table, the voices they speak with, and every line they say.

Each :class:`Turn` carries its reference labels (IC/OOC, segment type, character tag),
so the references written by :mod:`livereview.demo.build` come from the same lines as
the audio.
"""

from __future__ import annotations

from dataclasses import dataclass

from livereview.core.segments import IC, MIXED, OOC


@dataclass(frozen=True)
class Voice:
    """How ``espeak-ng`` and ``sox`` render one voice.

    Attributes
    ----------
    espeak : str
        ``espeak-ng -v`` argument: a language voice, optionally ``+variant``.
    pitch : int
        ``espeak-ng -p`` base pitch, 0-99.
    speed : int
        ``espeak-ng -s`` speaking rate in words per minute.
    peak_db : float
        Peak level (dBFS) of every clip: the person's distance to the microphone.
    effects : tuple of str
        Extra ``sox`` effects (tone of the person's place at the table).
    """

    espeak: str
    pitch: int
    speed: int
    peak_db: float
    effects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Person:
    """Someone at the table.

    Attributes
    ----------
    name : str
        The person's own name, used as the speaker label.
    voice : Voice
        The voice they speak with out of character and as their character.
    character : str
        Their player character; empty for the game master.
    aliases : tuple of str
        Short names the table uses for the character.
    """

    name: str
    voice: Voice
    character: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Npc:
    """A non-player character the game master gives a voice of its own.

    Attributes
    ----------
    name : str
        The NPC's name, used as ``character_tag`` of its lines.
    voice : Voice
        The game master's voice, put on for this NPC.
    """

    name: str
    voice: Voice


@dataclass(frozen=True)
class Scene:
    """A scene of the demo script: where the story moves on, or the table takes a break.

    Attributes
    ----------
    name : str
        What the scene is ("the inn", "the pizza break").
    kind : str
        ``"play"`` (in character) or ``"break"`` (out of character).
    first_turn : int
        Index in :data:`SCRIPT` of the scene's first turn; it lasts until the next scene.
    """

    name: str
    kind: str
    first_turn: int


@dataclass(frozen=True)
class Turn:
    """One line of the demo script.

    Attributes
    ----------
    speaker : str
        Name of the :class:`Person` speaking.
    text : str
        What they say, in plain words (numbers spelled out).
    ic_ooc : str
        ``"IC"``, ``"OOC"`` or ``"MIXED"``.
    segment_type : str
        One of :data:`livereview.core.segments.SEGMENT_TYPES`.
    character_tag : str
        The player character for a player's in-character line, the NPC for an NPC
        voice, ``"DM"`` for narration, ``""`` for out-of-character talk.
    pause_after : float
        Silence after the turn, in seconds; after the last turn, the recording's tail.
    """

    speaker: str
    text: str
    ic_ooc: str
    segment_type: str
    character_tag: str
    pause_after: float


PARTY_NAME = "The Lantern Company"

GM = Person(
    "Dana",
    Voice("en-us+m1", pitch=30, speed=165, peak_db=-7.0, effects=("bass", "+3")),
)
PLAYERS = (
    Person(
        "Alex",
        Voice("en-us+f5", pitch=60, speed=175, peak_db=-9.0, effects=("treble", "+2")),
        character="Morgan",
        aliases=("Morg",),
    ),
    Person(
        "Sam",
        Voice("en-us+m6", pitch=45, speed=175, peak_db=-8.0),
        character="Duncan",
        aliases=("Dunc",),
    ),
    Person(
        "Riley",
        Voice("en-us+m7", pitch=58, speed=185, peak_db=-10.0, effects=("lowpass", "6500")),
        character="Flint",
        aliases=("Flinty",),
    ),
)
PEOPLE = (GM, *PLAYERS)

#: NPC voices the game master puts on: the same voice, lower and slower or higher and faster.
NPCS = (
    Npc("Tom", Voice("en-us+m1", pitch=20, speed=150, peak_db=-7.0, effects=("bass", "+3"))),
    Npc("Goblin", Voice("en-us+m1", pitch=50, speed=185, peak_db=-7.0, effects=("bass", "+3"))),
)

#: The demo session, turn by turn.
SCRIPT: tuple[Turn, ...] = (
    Turn(
        "Dana",
        "Alright everyone, let's get started. The pizza should be here in half an hour.",
        OOC,
        "TABLE_TALK",
        "",
        0.5,
    ),
    Turn("Dana", "Rain drums on the roof of the Crooked Lantern inn.", IC, "DM_NARRATION", "DM", 0.5),
    Turn("Dana", "Welcome, travelers. What can old Tom get for you tonight?", IC, "NPC_DIALOGUE", "Tom", 0.6),
    Turn(
        "Alex",
        "Dinner for three, please. And what do you know about the old tower on the hill?",
        IC,
        "CHARACTER_SPEECH",
        "Morgan",
        0.5,
    ),
    Turn(
        "Dana",
        "Nobody goes up there anymore. My nephew went to the ruins and never came back.",
        IC,
        "NPC_DIALOGUE",
        "Tom",
        0.5,
    ),
    Turn("Sam", "Ruins, you say? Sounds like treasure to me.", IC, "CHARACTER_SPEECH", "Duncan", 0.3),
    Turn("Alex", "Can I roll insight to see if he is lying?", OOC, "MECHANICS", "", 0.4),
    Turn("Dana", "Sure, go ahead and roll.", OOC, "MECHANICS", "", 2.2),
    Turn("Alex", "I got an eighteen.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "His hands are shaking. He is telling the truth.", IC, "DM_NARRATION", "DM", 0.8),
    Turn("Dana", "Next morning, you climb the hill to the ruined tower.", IC, "DM_NARRATION", "DM", 0.5),
    Turn("Riley", "I creep ahead and look for tracks near the door.", IC, "CHARACTER_ACTION", "Flint", 0.4),
    Turn("Dana", "Give me a survival check.", OOC, "MECHANICS", "", 1.5),
    Turn("Riley", "Natural twenty! I love these dice.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "You find muddy footprints. Goblins went inside not long ago.", IC, "DM_NARRATION", "DM", 0.5),
    Turn("Riley", "Goblins. Stay quiet, and keep your axe ready, Duncan.", IC, "CHARACTER_SPEECH", "Flint", 0.4),
    Turn("Sam", "My axe is always ready, Flint.", IC, "CHARACTER_SPEECH", "Duncan", 0.7),
    Turn("Alex", "Sorry, one second, my sister keeps texting me.", OOC, "TABLE_TALK", "", 0.5),
    Turn("Dana", "No problem. Tell her we are busy saving the world.", OOC, "TABLE_TALK", "", 0.6),
    Turn(
        "Alex",
        "Okay, Morgan casts light on her staff. Wait, does that use a spell slot?",
        MIXED,
        "CHARACTER_ACTION",
        "Morgan",
        0.4,
    ),
    Turn("Dana", "No, light is a cantrip, so it is free.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "Four goblins leap up from behind the rubble, waving rusty blades.", IC, "DM_NARRATION", "DM", 0.3),
    Turn("Dana", "Intruders! Get them!", IC, "NPC_DIALOGUE", "Goblin", 0.5),
    Turn("Dana", "Everybody roll initiative.", OOC, "MECHANICS", "", 2.8),
    Turn("Sam", "I got a fifteen.", OOC, "MECHANICS", "", 0.12),
    Turn("Riley", "Twelve for me.", OOC, "MECHANICS", "", 0.4),
    Turn("Alex", "Only a four. Typical.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "Duncan goes first. What do you do?", OOC, "MECHANICS", "", 0.5),
    Turn(
        "Sam",
        "I swing my axe at the nearest goblin. Do I add my strength bonus?",
        MIXED,
        "CHARACTER_ACTION",
        "Duncan",
        0.4,
    ),
    Turn("Dana", "Yes, strength bonus to hit and to damage.", OOC, "MECHANICS", "", 0.7),
    Turn("Sam", "Nineteen to hit, and eleven damage.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "Your axe splits the goblin's shield, and it falls.", IC, "DM_NARRATION", "DM", 0.4),
    Turn("Sam", "Who is next? I can do this all day!", IC, "CHARACTER_SPEECH", "Duncan", 0.6),
    Turn("Riley", "Flint fires two arrows at the goblin near the stairs.", IC, "CHARACTER_ACTION", "Flint", 0.5),
    Turn("Dana", "Both arrows hit, and the goblin tumbles down the steps.", IC, "DM_NARRATION", "DM", 0.5),
    Turn("Alex", "Stay back, or I will burn this whole tower down!", IC, "CHARACTER_SPEECH", "Morgan", 0.4),
    Turn("Dana", "No, no, we surrender! Please don't hurt us!", IC, "NPC_DIALOGUE", "Goblin", 0.8),
    Turn("Riley", "Hold on, I think that's the pizza at the door.", OOC, "TABLE_TALK", "", 0.5),
    Turn("Dana", "Perfect timing. Let's take a short break.", OOC, "TABLE_TALK", "", 3.0),
    Turn("Sam", "Who ordered pineapple on this pizza? That should be illegal.", OOC, "TABLE_TALK", "", 0.1),
    Turn("Alex", "That was me, and I am not sorry.", OOC, "TABLE_TALK", "", 0.5),
    Turn("Dana", "Okay, grab a slice and let's get back to the game.", OOC, "TABLE_TALK", "", 0.8),
    Turn("Alex", "Where is the boy from the inn? Tell us, and you live.", IC, "CHARACTER_SPEECH", "Morgan", 0.5),
    Turn("Dana", "He is in the cellar, locked in a cage.", IC, "NPC_DIALOGUE", "Goblin", 0.6),
    Turn(
        "Riley", "Flint runs to the cellar. Can I pick the lock, or do I roll?", MIXED, "CHARACTER_ACTION", "Flint", 0.4
    ),
    Turn("Dana", "Roll it with advantage.", OOC, "MECHANICS", "", 2.0),
    Turn("Riley", "Sixteen, that should do it.", OOC, "MECHANICS", "", 0.5),
    Turn("Dana", "The lock clicks open. A frightened boy looks up at you.", IC, "DM_NARRATION", "DM", 0.5),
    Turn("Sam", "It's alright, lad. We are taking you home to your uncle.", IC, "CHARACTER_SPEECH", "Duncan", 0.7),
    Turn("Dana", "That's a good place to stop for tonight. Great game, everyone.", OOC, "TABLE_TALK", "", 0.8),
)

#: The scenes of :data:`SCRIPT`, in order: pre-game talk, the inn, the climb to the tower,
#: the goblin fight, the pizza break, the cellar, and the wrap-up.
SCENES: tuple[Scene, ...] = (
    Scene("pre-game", "break", 0),
    Scene("the inn", "play", 1),
    Scene("the climb to the tower", "play", 10),
    Scene("the goblin fight", "play", 21),
    Scene("the pizza break", "break", 37),
    Scene("the cellar", "play", 42),
    Scene("wrap-up", "break", 49),
)

#: The places the script names, each with the other names it goes by in the script.
NAMED_PLACES: dict[str, tuple[str, ...]] = {"Crooked Lantern": ("Crooked Lantern inn",)}
