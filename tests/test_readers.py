"""Users' data: each reader on small files made here, and its answers to bad input."""

import numpy as np
import pytest

from kerasaudio import datasets, train
from kerasaudio.config import DataConfig, FeatureConfig, ModelConfig, RunConfig, TrainConfig
from kerasaudio.errors import UserError

TS_HEADER = """# made by the tests
@problemName Toy
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true 1 2 3
@data
"""


def ts_case(rng, label: int) -> str:
    """A case whose class is which dimension carries an offset; 2 dimensions, 4-12 steps."""
    length = int(rng.integers(4, 13))
    x = rng.standard_normal((2, length)) * 0.3
    x[(label - 1) % 2] += 1.5 if label < 3 else -1.5
    return ":".join(",".join(f"{v:.4f}" for v in row) for row in x) + f":{label}"


def write_ts(folder, n_train=60, n_test=30, seed=0, name="Toy"):
    rng = np.random.default_rng(seed)
    for split, n in (("TRAIN", n_train), ("TEST", n_test)):
        cases = [ts_case(rng, 1 + i % 3) for i in range(n)]
        (folder / f"{name}_{split}.ts").write_text(TS_HEADER + "\n".join(cases) + "\n")
    return folder / f"{name}_TRAIN.ts"


def test_a_ts_pair_loads_with_a_validation_share_and_trains(tmp_path):
    path = write_ts(tmp_path)
    data = datasets.load(DataConfig(name=str(path)), FeatureConfig())
    assert data.n_features == 2 and data.class_names == {"class": ["1", "2", "3"]}
    counts = {s: int(np.sum(data.split == s)) for s in ("train", "val", "test")}
    assert counts == {"train": 54, "val": 6, "test": 30}
    assert sorted(np.bincount(data.subset("val").targets["class"])) == [2, 2, 2]  # stratified
    assert data.features.kind == "given"
    cfg = RunConfig(data=DataConfig(name=str(path)), out=str(tmp_path / "runs"),
                    model=ModelConfig("gru", {"hidden": 8, "layers": 1}),
                    train=TrainConfig(epochs=1, batch_size=8))
    run_dir, metrics = train.fit(cfg, verbose=0)
    assert 0 <= metrics["test"]["accuracy"] <= 1
    assert runs_features(run_dir) == "given"
    # Given either file of the pair, the same data set.
    other = datasets.load(DataConfig(name=str(tmp_path / "Toy_TEST.ts")), FeatureConfig())
    np.testing.assert_array_equal(other.frames, data.frames)


def runs_features(run_dir) -> str:
    import json

    return json.loads((run_dir / "config.json").read_text())["features"]["kind"]


BAD_TS = {
    "nan": ("1,2,?:3,4,5:1", r"Toy_TRAIN.ts:10: missing, NaN or infinite values"),
    "text": ("1,2,x:3,4,5:1", r"Toy_TRAIN.ts:10: a value that is not a number"),
    "lengths": ("1,2:3,4,5:1", r"Toy_TRAIN.ts:10: dimensions of different lengths \(2, 3\)"),
    "dimensions": ("1,2,3:1", r"Toy_TRAIN.ts:10: 1 dimensions, expected 2"),
    "label": ("1,2:3,4:7", r"Toy_TRAIN.ts:10: class '7' is not in @classLabel \(1 2 3\)"),
    "no label": ("1,2:3,4:", r"Toy_TRAIN.ts:10: expected dimensions separated by ':'"),
}


@pytest.mark.parametrize("case", BAD_TS)
def test_a_bad_ts_case_is_named_by_file_and_line(tmp_path, case):
    path = write_ts(tmp_path)
    line, message = BAD_TS[case]
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:9] + [line] + lines[9:]) + "\n")
    with pytest.raises(UserError, match=message):
        datasets.load(DataConfig(name=str(path)), FeatureConfig())


def test_bad_ts_files_and_pairs_are_named(tmp_path):
    path = write_ts(tmp_path)
    load = lambda p: datasets.load(DataConfig(name=str(p)), FeatureConfig())  # noqa: E731
    (tmp_path / "Toy_TEST.ts").unlink()
    with pytest.raises(UserError, match=r"Toy_TEST.ts: no such file \(the test split\)"):
        load(path)
    write_ts(tmp_path)
    (tmp_path / "Toy_TEST.ts").write_text(TS_HEADER.replace(" 1 2 3", " 1 2 3 4") + "1,2:3,4:4\n")
    with pytest.raises(UserError, match=r"Toy_TEST.ts: class '4' does not occur in Toy_TRAIN"):
        load(path)
    path.write_text(TS_HEADER.replace("@data\n", ""))
    with pytest.raises(UserError, match="Toy_TRAIN.ts: no @data line"):
        load(path)
    path.write_text(TS_HEADER.replace("@timeStamps false", "@timeStamps true"))
    with pytest.raises(UserError, match="Toy_TRAIN.ts:3: time-stamped values are not supported"):
        load(path)
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(UserError, match="Toy_TRAIN.ts: not a readable .ts text file"):
        load(path)
    write_ts(tmp_path)
    path.write_text(TS_HEADER + "1,2:3,4:1\n1,2:3,4:2\n1,2:3,4:2\n")
    with pytest.raises(UserError, match="Toy_TRAIN.ts: class '1' has 1 example"):
        load(path)
    (tmp_path / "other.ts").write_text(TS_HEADER)
    with pytest.raises(UserError, match="other.ts: expected a name ending in _TRAIN.ts"):
        load(tmp_path / "other.ts")
    with pytest.raises(UserError, match=r"nowhere: no such file or folder, and not a built-in"):
        load("nowhere")


def test_every_format_the_cli_offers_has_a_reader():
    from kerasaudio.config import DATA_FORMATS

    assert set(DATA_FORMATS) == set(datasets.READERS)
