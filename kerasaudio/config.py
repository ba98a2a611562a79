"""Typed run configuration. Defaults live here (and, for model hyperparameters, in each
architecture's `build` signature), nowhere else."""

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataConfig:
    """Which data set to load and how much of it.

    Attributes:
        name: a built-in data set name (see `kerasaudio.datasets.BUILTIN`) or a path.
        limit: keep at most this many examples per split (None keeps all).
        seed: seed of the built-in corpus (which speakers, takes, noise).
    """

    name: str = "spoken-digits"
    limit: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class FeatureConfig:
    """Waveform -> frame features.

    Attributes:
        kind: feature type; `mfcc` for now.
        sample_rate: rate the waveform is resampled to, in Hz.
        n_mfcc: cepstral coefficients kept per frame.
        n_mels: mel filters the MFCCs are computed from.
        frame_ms: analysis window length in milliseconds.
        hop_ms: frame step in milliseconds (10 ms gives 100 frames a second).
        fft_length: FFT size in samples.
    """

    kind: str = "mfcc"
    sample_rate: int = 16000
    n_mfcc: int = 13
    n_mels: int = 40
    frame_ms: float = 25.0
    hop_ms: float = 10.0
    fft_length: int = 512

    @property
    def frame_length(self) -> int:
        return int(round(self.sample_rate * self.frame_ms / 1000))

    @property
    def frame_step(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))


@dataclass(frozen=True)
class ModelConfig:
    """Architecture name and the hyperparameters given explicitly (the rest take the
    defaults of the architecture's `build`)."""

    arch: str = "gru_attention"
    hparams: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: maximum number of epochs (early stopping may end sooner).
        batch_size: examples per batch.
        lr: Adam learning rate.
        patience: epochs without a better validation loss before stopping.
        seed: seeds Python, NumPy, TensorFlow and the input pipeline's shuffling.
    """

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    patience: int = 6
    seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    """Everything one `fit` needs; written to config.json in the run directory."""

    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "results/runs"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(
            data=DataConfig(**d["data"]),
            features=FeatureConfig(**d["features"]),
            model=ModelConfig(**d["model"]),
            train=TrainConfig(**d["train"]),
            out=d["out"],
        )


@dataclass(frozen=True)
class Task:
    """One prediction target of a data set.

    Attributes:
        name: the target's name; also the name of the model output that predicts it.
        kind: `classification` for now.
        num_classes: number of classes of a classification target.
    """

    name: str
    kind: str = "classification"
    num_classes: int = 0
