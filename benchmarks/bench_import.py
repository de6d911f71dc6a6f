"""How long ``import livereview`` and the CLI's ``--help`` take in a fresh interpreter, and what they load.

Prints the median and the range over several runs (target: ``import livereview`` under
1.5 s on a 2-core machine) and the model libraries each loaded (there must be none).

    python benchmarks/bench_import.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

TARGET_SECONDS = 1.5
MODEL_LIBRARIES = ("torch", "torchaudio", "pyannote.audio", "ctranslate2", "faster_whisper", "sentence_transformers")
CASES = {
    "import livereview": "import livereview",
    "livereview --help": (
        "import livereview.cli\ntry:\n    livereview.cli.main(['--help'])\nexcept SystemExit:\n    pass"
    ),
}


def timed(code: str) -> tuple[float, list[str]]:
    """Seconds ``code`` takes in a new interpreter, and the model libraries it loaded."""
    probe = (
        "import contextlib, io, json, sys, time\nstarted = time.perf_counter()\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "elapsed = time.perf_counter() - started\n"
        + f"print(json.dumps([elapsed, [m for m in {MODEL_LIBRARIES!r} if m in sys.modules]]))"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    seconds, loaded = json.loads(output)
    return float(seconds), loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    timed("import livereview")  # warm the file system cache once
    for name, code in CASES.items():
        runs = [timed(code) for _ in range(args.repeats)]
        seconds = [s for s, _ in runs]
        loaded = sorted({m for _, modules in runs for m in modules})
        verdict = "meets" if statistics.median(seconds) < TARGET_SECONDS else "MISSES"
        print(
            f"{name}: median {statistics.median(seconds):.2f} s (range {min(seconds):.2f}-{max(seconds):.2f} s, "
            f"{args.repeats} runs; {verdict} the {TARGET_SECONDS} s target); model libraries loaded: {loaded or 'none'}"
        )


if __name__ == "__main__":
    main()
