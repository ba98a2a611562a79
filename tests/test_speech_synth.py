import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from kerasaudio.datasets import speech_synth


def test_speaker_table_is_88_distinct_voices_split_by_speaker():
    table = speech_synth.speaker_table(seed=0)
    assert len(table) == 88
    assert len({(s["voice"], s["variant"]) for s in table}) == 88
    splits = [s["split"] for s in table]
    counts = {k: splits.count(k) for k in ("train", "val", "test")}
    assert counts == {"train": 60, "val": 6, "test": 22}
    assert {s["gender"] for s in table} == {"male", "female"}
    for split in ("train", "test"):
        assert {s["gender"] for s in table if s["split"] == split} == {"male", "female"}


def test_split_depends_on_seed():
    a = [s["split"] for s in speech_synth.speaker_table(seed=0)]
    b = [s["split"] for s in speech_synth.speaker_table(seed=1)]
    assert a != b


def test_synthesis_is_bit_identical_for_a_seed():
    # Speaker 3 is a breathy female variant: eSpeak's noise generator must be seeded too.
    first = speech_synth.synthesize_digits(seed=0, speakers=[40, 3])
    again = speech_synth.synthesize_digits(seed=0, speakers=[40, 3])
    for key in ("waves", "lengths", "digit", "rate", "pitch", "snr_db"):
        np.testing.assert_array_equal(first[key], again[key])
    other = speech_synth.synthesize_digits(seed=1, speakers=[40, 3])
    assert not np.array_equal(first["snr_db"], other["snr_db"])


def _voice_folders() -> set:
    """What eSpeak voice folders hold in the temporary folder: a worker's own folder's
    contents, or a worker's folder in its parent's."""
    return set(Path(tempfile.gettempdir()).glob("kerasaudio-espeak-*/*"))


def _interrupted_while_a_worker_synthesises(results, label, total):
    """Ctrl-C once the first speaker is done and another worker has made its folder."""
    yield next(iter(results))
    before = _voice_folders()
    deadline = time.monotonic() + 60
    while not _voice_folders() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _voice_folders() - before, "no worker made a voice folder"
    raise KeyboardInterrupt


def test_a_ctrl_c_during_synthesis_leaves_no_voice_folders(monkeypatch):
    # The pool terminates its workers, which then cannot remove their own folders.
    def leftovers():
        return set(Path(tempfile.gettempdir()).glob("kerasaudio-espeak-*"))

    before = leftovers()
    monkeypatch.setattr(speech_synth.progress, "each", _interrupted_while_a_worker_synthesises)
    with pytest.raises(KeyboardInterrupt):
        speech_synth.synthesize_digits(seed=0, speakers=[0, 1, 2, 3, 4, 5])
    assert leftovers() == before


def test_corpus_content_and_metadata():
    corpus = speech_synth.synthesize_digits(seed=0, speakers=[5])
    n = len(speech_synth.DIGITS) * speech_synth.TAKES
    assert len(corpus["lengths"]) == n
    assert corpus["lengths"].sum() == len(corpus["waves"])
    assert corpus["waves"].dtype == np.int16
    np.testing.assert_array_equal(np.bincount(corpus["digit"]), [speech_synth.TAKES] * 10)
    seconds = corpus["lengths"] / speech_synth.SAMPLE_RATE
    assert 0.2 < seconds.min() and seconds.max() < 2.0
    assert set(corpus["speaker"]) == {5} and len(set(corpus["split"])) == 1
    lo, hi = speech_synth.DIGIT_SNR_DB_RANGE
    assert np.all((corpus["snr_db"] >= lo) & (corpus["snr_db"] <= hi))
    assert len(set(corpus["rate"])) > 10 and len(set(corpus["pitch"])) > 10
    # Different digits really are different sounds: not all the same length.
    assert len(set(corpus["lengths"])) > n // 2


SCRIPT_THAT_COUNTS_ITS_IMPORTS = """
import sys
sys.path.insert(0, {root!r})
with open({marker!r}, "a") as marker:  # a user's script: imports TensorFlow, say, at its top
    marker.write("imported\\n")
from kerasaudio.datasets import speech_synth

if __name__ == "__main__":
    corpus = speech_synth.synthesize_digits(seed=0, speakers=[5, 40])
    print(len(corpus["lengths"]), sys.modules["__main__"].__file__ == __file__)
"""


def test_speaker_processes_do_not_import_the_callers_script_again(tmp_path):
    # Python's forkserver imports the main script in every worker; one that imports
    # TensorFlow made each speaker's process cost 6 s more (16 speakers: 31 s instead of 3).
    import subprocess
    import sys
    from pathlib import Path

    marker = tmp_path / "imports.txt"
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT_THAT_COUNTS_ITS_IMPORTS.format(
        root=str(Path(__file__).resolve().parents[1]), marker=str(marker)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    last_line = done.stdout.strip().splitlines()[-1]
    assert last_line.split() == [str(2 * len(speech_synth.DIGITS) * speech_synth.TAKES), "True"]
    assert marker.read_text().splitlines() == ["imported"]


def test_overlapping_pools_of_two_threads_put_the_main_module_back():
    # The first pool opened closes first, while the second is still open: the order that
    # lost the main module when each pool put back what it had found.
    import sys
    import threading

    from kerasaudio import processes

    main = sys.modules["__main__"]
    first_open, second_open, first_closed = (threading.Event() for _ in range(3))
    results = []

    def first():
        with processes.pool([], 1) as pool:
            first_open.set()
            second_open.wait()
            results.append(pool.map(abs, [-1]))
        first_closed.set()

    def second():
        first_open.wait()
        with processes.pool([], 1) as pool:
            second_open.set()
            first_closed.wait()
            results.append(pool.map(abs, [-2]))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [[1], [2]]
    assert sys.modules["__main__"] is main
