import numpy as np

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
