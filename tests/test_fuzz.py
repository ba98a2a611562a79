"""The text parsers of users' data on random and mutated input: they load it or raise the
one clean error (UserError), never anything else."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerasaudio.datasets import frames, spectrograms, uea
from kerasaudio.errors import UserError

VALID_TS = """@problemName Toy
@dimensions 2
@classLabel true a b
@data
1.0,2.0,3.0:4.0,5.0,6.0:a
0.5,?,1.5:2,3,4:b
7,8:9,10:a
"""
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def mutations():
    """VALID_TS with a random slice replaced by random text, or characters dropped."""
    text = st.text(alphabet=st.sampled_from(list(VALID_TS + "\x00é\t-e+inf nan@#:,\n")),
                   max_size=20)
    return st.builds(lambda a, b, insert: VALID_TS[:min(a, b)] + insert + VALID_TS[max(a, b):],
                     st.integers(0, len(VALID_TS)), st.integers(0, len(VALID_TS)), text)


def loads_or_refuses(parse, path):
    try:
        parse(path)
    except UserError:
        pass


@FUZZ
@given(st.one_of(mutations(), st.text(max_size=200), st.binary(max_size=200)))
def test_the_ts_parser_loads_or_raises_the_clean_error(tmp_path, content):
    path = tmp_path / "fuzz.ts"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    loads_or_refuses(uea.read_ts, path)


@FUZZ
@given(st.text(max_size=300))
def test_the_label_file_parsers_load_or_raise_the_clean_error(tmp_path, content):
    path = tmp_path / "labels.txt"
    path.write_text(content, encoding="utf-8", errors="surrogatepass")
    loads_or_refuses(frames.read_labels, path)
    loads_or_refuses(spectrograms.read_labels, path)
    loads_or_refuses(spectrograms.read_mapping, path)


def test_the_valid_ts_parses():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ok.ts"
        path.write_text(VALID_TS.replace("?", "1.0"))
        series, labels, classes = uea.read_ts(path)
    assert [s.shape for s in series] == [(3, 2), (3, 2), (2, 2)] and labels == ["a", "b", "a"]
    assert classes == ["a", "b"] and np.isfinite(np.concatenate(series)).all()


@FUZZ
@given(st.binary(max_size=200))
def test_label_files_of_random_bytes_load_or_raise_the_clean_error(tmp_path, content):
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    loads_or_refuses(frames.read_labels, path)
    loads_or_refuses(spectrograms.read_labels, path)
    loads_or_refuses(spectrograms.read_mapping, path)
