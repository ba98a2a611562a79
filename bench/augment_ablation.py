"""Which augmentation helps a spoken-digits model hear new voices: gru_attention trained with
none, each waveform augmentation alone, SpecAugment alone (`spec`), and all of them as the
main command trains (`default`: every waveform augmentation and SpecAugment), with the same
budget of epochs, then scored on the synthetic test speakers, on a real speaker (Asterisk's
Allison) and on another engine (flite), as bench/real_voices.py makes them. Also seconds per
epoch of each.

    python bench/augment_ablation.py [--epochs 12] [--out /tmp/ablation] [--only none,default]

Prints one JSON line per setting. Needs what bench/real_voices.py needs (flite, apt-get).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_voices  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from kerasaudio.config import AUGMENTATIONS  # noqa: E402

SETTINGS = ("none", *AUGMENTATIONS, "spec", "default")


def options(setting: str) -> list:
    """`fit` options of one setting: the default is the main command's own (SpecAugment is
    on for spoken-digits since commit 8c2afbc); every other arm has SpecAugment off but
    `spec`, which has no waveform augmentation."""
    if setting == "default":
        return []
    if setting == "spec":
        return ["--augment", "none", "--spec-augment"]
    return ["--augment", setting, "--no-spec-augment"]


def train(setting: str, epochs: int, out: Path) -> Path:
    folder = out / setting
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "fit", "--arch", "gru_attention",
                    *options(setting), "--epochs", str(epochs), "--out", str(folder)],
                   check=True, capture_output=True, cwd=ROOT)
    (run_dir,) = [p for p in folder.iterdir() if p.is_dir()]
    return run_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", default="/tmp/ablation")
    parser.add_argument("--work", default="/tmp/real-voices")
    parser.add_argument("--only", help="comma-separated settings (default: all of them)")
    args = parser.parse_args()
    out, work = Path(args.out), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sets = {"asterisk": real_voices.asterisk(work), "flite": real_voices.flite(work)}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True, check=True).stdout.strip()
    for setting in args.only.split(",") if args.only else SETTINGS:
        run_dir = train(setting, args.epochs, out)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        line = {"bench": "augment_ablation", "commit": commit, "augment": setting,
                "epochs": args.epochs,
                "run": str(run_dir), "seconds_per_epoch": metrics["seconds_per_epoch"],
                "synthetic_test_accuracy": round(metrics["test"]["accuracy"], 4)}
        for name, folder in sets.items():
            report = real_voices.score(str(run_dir), folder)
            line[f"{name}_accuracy"] = round(report["tasks"]["digit"]["accuracy"], 4)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
