"""Every bad-input case of the readers' tests, given to the CLI, and the commands' own bad
options (tests/test_reliability.py): what the CLI printed and its exit status, as Markdown
tables; for tune --overwrite, whether the finished search it named survived.

    python results/bad_input.py > results/bad_input.md

Each case is made in a temporary folder by the tests' own helpers (tests/test_readers.py)
and run as `python cli.py data info --data PATH`; the table shows stderr with the folder's
path shortened to `…`.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the tests import their conftest by name

from tests import test_readers as cases  # noqa: E402
from tests import test_reliability as reliability  # noqa: E402


def ts_cases(folder: Path) -> dict:
    out = {}
    for name, (line, _) in cases.BAD_TS.items():
        where = folder / f"ts-{name.replace(' ', '-')}"
        where.mkdir()
        path = cases.write_ts(where)
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[:9] + [line] + lines[9:]) + "\n")
        out[f".ts: {name}"] = path
    missing = folder / "ts-no-test"
    missing.mkdir()
    path = cases.write_ts(missing)
    (missing / "Toy_TEST.ts").unlink()
    out[".ts: test file missing"] = path
    return out


def run(path: Path, folder: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "cli.py", "data", "info", "--data", str(path),
                           "--out", str(folder / "info")], cwd=ROOT, capture_output=True,
                          text=True)
    return done.returncode, done.stderr.strip().replace(str(folder), "…")


def command_cases(folder: Path) -> None:
    """The commands' own bad input (tests/test_reliability.py): option values, and tune
    --overwrite with something wrong, with a check that the finished search survived."""
    print("\n| command | exit status | what the CLI printed (stderr) | nothing deleted |")
    print("| --- | --- | --- | --- |")
    out = folder / "searches"
    for options in reliability.TUNE_OVERWRITE_CASES:
        for name in ("victim", "other"):
            (out / name).mkdir(parents=True, exist_ok=True)
            (out / name / "search.json").write_text("{}")
        before = reliability.tree(out)
        argv = ["tune", "--name", "victim", "--overwrite", "--out", str(out),
                "--max-epochs", "1", *options]
        done = subprocess.run([sys.executable, "cli.py", *argv], cwd=ROOT,
                              capture_output=True, text=True)
        kept = "yes" if reliability.tree(out) == before else "NO"
        shown = " ".join(argv).replace(str(folder), "…")
        print(f"| `{shown}` | {done.returncode} | "
              f"`{done.stderr.strip().replace(str(folder), '…')}` | {kept} |", flush=True)
    for options in reliability.FIT_OPTION_CASES:
        argv = ["fit", "--out", str(folder / "runs"), *options]
        done = subprocess.run([sys.executable, "cli.py", *argv], cwd=ROOT,
                              capture_output=True, text=True)
        kept = "yes" if not (folder / "runs").exists() else "NO (wrote runs/)"
        shown = " ".join(argv).replace(str(folder), "…")
        print(f"| `{shown}` | {done.returncode} | "
              f"`{done.stderr.strip().replace(str(folder), '…')}` | {kept} |", flush=True)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = {**ts_cases(folder)}
        table.update({f"audio: {k}": v[0] for k, v in cases.bad_audio_cases(folder).items()})
        frames = folder / "frames"
        frames.mkdir()
        table.update({f"frames: {k}": v[0] for k, v in cases.bad_frame_cases(frames).items()})
        spectrograms = folder / "spectrograms"
        spectrograms.mkdir()
        table.update({f"spectrograms: {k}": v[0]
                      for k, v in cases.bad_spectrogram_cases(spectrograms).items()})
        table["no such path"] = folder / "nowhere"
        print("| case | exit status | what the CLI printed (stderr) |")
        print("| --- | --- | --- |")
        for case, path in table.items():
            status, stderr = run(path, folder)
            print(f"| {case} | {status} | `{stderr}` |", flush=True)
        command_cases(folder)


if __name__ == "__main__":
    main()
