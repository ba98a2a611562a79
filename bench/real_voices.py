"""How a spoken-digits run does on voices it was never trained on: a real human speaker and
another speech engine.

- `asterisk`: Debian's asterisk-core-sounds-en-wav, the recorded prompts of a real speaker
  (Allison), `en_US_f_Allison/digits/0.wav` .. `9.wav`, 8 kHz telephone audio;
- `flite`: Debian's flite engine (never used for training), voices kal16, awb, rms and slt
  saying zero..nine at duration_stretch 0.8, 1.0 and 1.25: 120 files;
- `festival`, when Debian's festival and festvox-kdlpc16k are installed: Festival's ked
  voice (an American man, diphones; not one of flite's speakers) saying zero..nine at
  Duration_Stretch 0.8, 1.0 and 1.25: 30 files. Added after every corpus choice so far, and
  kept for measuring only: the two sets above have chosen between variants, so their figures
  are optimistic; this one has chosen nothing.

They are made as audio folders (`<folder>/<digit>/*.wav`) under --work, then scored with
`python cli.py evaluate RUN --data FOLDER` (the run's own feature extraction). Needs
`apt-get install flite` and network access to Debian's archive for `apt-get download`.

    python bench/real_voices.py RUN_DIR [RUN_DIR ...] [--work /tmp/real-voices]

Prints one JSON line per run and set (accuracy, and the per-digit predictions of asterisk).
"""

import argparse
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
STRETCHES = (0.8, 1.0, 1.25)


def asterisk(work: Path) -> Path:
    """The real speaker's ten digits as an audio folder."""
    folder = work / "asterisk"
    if folder.is_dir():
        return folder
    unpacked = work / "asterisk-deb"
    unpacked.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "asterisk-core-sounds-en-wav"], cwd=work, check=True,
                   capture_output=True)
    (deb,) = glob.glob(str(work / "asterisk-core-sounds-en-wav_*.deb"))
    subprocess.run(["dpkg-deb", "-x", deb, str(unpacked)], check=True)
    (digits,) = glob.glob(str(unpacked / "usr/share/asterisk/sounds/en_US_f_Allison/digits"))
    for d in range(10):
        (folder / str(d)).mkdir(parents=True, exist_ok=True)
        os.link(Path(digits) / f"{d}.wav", folder / str(d) / "allison.wav")
    return folder


def flite(work: Path) -> Path:
    """Flite's four voices saying each digit at three speaking rates."""
    folder = work / "flite"
    if folder.is_dir():
        return folder
    for d, word in enumerate(DIGITS):
        (folder / str(d)).mkdir(parents=True, exist_ok=True)
        for voice in FLITE_VOICES:
            for stretch in STRETCHES:
                out = folder / str(d) / f"{voice}-{stretch}.wav"
                subprocess.run(["flite", "-voice", voice, "--setf",
                                f"duration_stretch={stretch}", "-t", word, "-o", str(out)],
                               check=True)
    return folder


def festival(work: Path) -> Path | None:
    """Festival's ked voice saying each digit at three speaking rates, or None without it."""
    folder = work / "festival"
    if folder.is_dir():
        return folder
    if not Path("/usr/share/festival/voices/english/ked_diphone").is_dir():
        return None
    for d, word in enumerate(DIGITS):
        (folder / str(d)).mkdir(parents=True, exist_ok=True)
        for stretch in STRETCHES:
            subprocess.run(["text2wave", "-eval", "(voice_ked_diphone)", "-eval",
                            f"(Parameter.set 'Duration_Stretch {stretch})", "-o",
                            str(folder / str(d) / f"ked-{stretch}.wav")],
                           input=word, text=True, check=True)
    return folder


def score(run_dir: str, folder: Path) -> dict:
    """Accuracy and per-file predictions of `evaluate RUN --data folder`."""
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), "evaluate", run_dir,
                             "--data", str(folder)], capture_output=True, text=True, cwd=ROOT)
    if result.returncode:
        raise SystemExit(result.stderr)
    report = json.loads((Path(run_dir) / "evaluations" / folder.name / "metrics.json")
                        .read_text())
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--work", default="/tmp/real-voices")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sets = {"asterisk": asterisk(work), "flite": flite(work), "festival": festival(work)}
    sets = {name: folder for name, folder in sets.items() if folder is not None}
    for run_dir in args.runs:
        for name, folder in sets.items():
            report = score(run_dir, folder)
            task = next(iter(report["tasks"]))
            line = {"bench": "real_voices", "run": run_dir, "set": name,
                    "files": report["examples"], "accuracy": report["tasks"][task]["accuracy"]}
            if name in ("asterisk", "festival"):
                line["predicted"] = report["predicted"][task]
            else:
                line["accuracy_by_voice"] = by_voice(report["predicted"][task])
            print(json.dumps(line), flush=True)


def by_voice(predicted: dict) -> dict:
    """flite voice -> accuracy over its 30 files (<digit>/<voice>-<stretch>.wav)."""
    right = {}
    for path, label in predicted.items():
        path = Path(path)
        voice = path.stem.rsplit("-", 1)[0]
        right.setdefault(voice, []).append(label == DIGITS[int(path.parent.name)])
    return {voice: round(sum(hits) / len(hits), 4) for voice, hits in sorted(right.items())}


if __name__ == "__main__":
    main()
