"""Typed run configuration and run records. The defaults here are the last resort:
kerasaudio/settings.py resolves a fit's settings (an option given, then a best.json or
config.json, then the architecture's own `TRAINING`, then these); model hyperparameters
default in each architecture's `build` signature."""

import dataclasses
import json
from dataclasses import dataclass, field

from kerasaudio.errors import UserError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "cosine-restarts", "plateau")
WINDOW_EDGES = ("repeat", "zero")
# Readers of users' data (`kerasaudio.datasets.READERS`), named here so the CLI lists them
# without importing the readers.
DATA_FORMATS = ("ts", "audio", "frames", "images", "spectrograms")
# A data set's splits; the parts of a fused spectrogram array (`--part`); export formats.
SPLITS = ("train", "val", "test")
SPECTROGRAM_PARTS = ("all", "mel", "chroma")
EXPORT_FORMATS = ("keras", "savedmodel", "tflite", "onnx")


@dataclass(frozen=True)
class DataConfig:
    """Which data set to load and how much of it.

    Attributes:
        name: a built-in data set name (see `kerasaudio.datasets.BUILTIN`) or a path.
        limit: keep at most this many examples per split (None keeps all).
        seed: seed of the built-in corpus (which speakers, takes, noise), and of the splits
            drawn for users' data sets that bring none.
        format: how to read a path (see `kerasaudio.datasets.READERS`); None: from the path.
        val_fraction: share of the training data drawn for validation when none is given.
        test_fraction: share of the data drawn for testing when no test split is given.
        part: of a fused mel+chroma spectrogram, `all` rows, the `mel` rows or the `chroma`.
        skip_bad: leave out bad examples (unreadable files, bad lines) and report them,
            instead of stopping at the first.
        tasks: the targets to train on, by name (empty: every target of the data set).
        folds: cross-validation: the training and validation examples pooled and dealt
            into this many folds (stratified, and by group where the data has groups); the
            test split stays as it is. None: the data's own validation split.
        fold: with `folds`, the fold that is the validation split (the rest train).
        train_fraction: keep this share of the training examples (whole groups, else
            stratified by class), drawn with `seed`; validation and test stay whole.
    """

    name: str = "spoken-digits"
    limit: int | None = None
    seed: int = 0
    format: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    part: str = "all"
    skip_bad: bool = False
    tasks: tuple = ()
    folds: int | None = None
    fold: int | None = None
    train_fraction: float = 1.0


@dataclass(frozen=True)
class FeatureConfig:
    """Waveform -> frame features.

    Attributes:
        kind: `mfcc`, `logmel`, `chroma`, or several joined by "+" (e.g. `logmel+chroma`).
        deltas: add deltas and delta-deltas to the MFCCs (13 -> 39).
        beat_sync: replace the frames between consecutive detected beats by their median.
        sample_rate: rate the waveform is resampled to, in Hz.
        n_mfcc: cepstral coefficients kept per frame.
        n_mels: mel bands of `logmel`, and the ones the MFCCs are computed from.
        frame_ms: analysis window length in milliseconds.
        hop_ms: frame step in milliseconds (10 ms gives 100 frames a second).
        fft_length: FFT size in samples.
        max_hz: upper edge of the mel filterbank (None: half the sample rate). 4000 keeps
            to what a telephone or 8 kHz recording holds, so such audio fills every band.
        cmvn: normalise each utterance's features to zero mean and unit variance over its
            own frames (cepstral mean and variance normalisation), inside the model: a
            microphone's or channel's fixed colouring is a constant offset of the log
            spectrum that this removes.
    """

    kind: str = "mfcc"
    deltas: bool = False
    beat_sync: bool = False
    sample_rate: int = 16000
    n_mfcc: int = 13
    n_mels: int = 40
    frame_ms: float = 25.0
    hop_ms: float = 10.0
    fft_length: int = 512
    max_hz: float | None = None
    cmvn: bool = False

    @property
    def frame_length(self) -> int:
        return int(round(self.sample_rate * self.frame_ms / 1000))

    @property
    def frame_step(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))


def fft_length_for(features: "FeatureConfig") -> int:
    """The smallest power of two that holds one analysis window at the features' rate."""
    return 1 << max(0, features.frame_length - 1).bit_length()


# Feature settings that built-in data sets are read with unless told otherwise: the phoneme
# course project's 39-dim MFCCs, and log-mel for voice-attributes, whose pitch the MFCCs
# smooth away.
# spoken-digits keeps to the telephone band (8 kHz audio, mel bands to 4 kHz: half the samples
# to augment and transform on the fly, nothing lost) and normalises each utterance, so that a
# model trained on it hears recordings of real people (8 kHz, other microphones) as it heard
# the corpus; its frames are 20 ms apart (keyword spotters' usual step), which over three
# seeds heard the real voices better than 10 ms, in two thirds of the time (results/README.md,
# "Real voices").
# music-genres: 64 ms windows every 32 ms, the scale of notes and beats rather than of
# phonemes (313 frames per 10 s clip), in the usual 40 mel bands, which every run in
# results/README.md had.
BUILTIN_FEATURES = {"spoken-digits": {"sample_rate": 8000, "fft_length": 256, "max_hz": 4000.0,
                                      "hop_ms": 20.0, "cmvn": True},
                    "spoken-phonemes": {"deltas": True}, "voice-attributes": {"kind": "logmel"},
                    "music-genres": {"kind": "logmel", "frame_ms": 64.0,
                                     "hop_ms": 32.0, "fft_length": 1024}}


# Waveform augmentations (kerasaudio/augment.py), and the set the built-in speech corpus
# trains with unless told otherwise.
AUGMENTATIONS = ("speed", "gain", "shift", "noise", "babble", "reverb", "telephone")
DEFAULT_AUGMENT = AUGMENTATIONS
BUILTIN_AUGMENT = {"spoken-digits": DEFAULT_AUGMENT}

# The data sets that train with SpecAugment's masks on their features unless told otherwise:
# on the speech corpus they gained on all three sets of real voices over three seeds, for
# half a point on the synthetic test split (results/README.md, "Real voices").
BUILTIN_SPEC_AUGMENT = frozenset({"spoken-digits"})


def parse_augment(text: str) -> tuple:
    """`--augment` as a tuple of names: `none`, `default` (every one), or names joined by '+'.

    Raises:
        UserError: for an unknown or repeated name.
    """
    if text == "none":
        return ()
    if text == "default":
        return DEFAULT_AUGMENT
    names = tuple(text.split("+"))
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown or len(set(names)) != len(names):
        raise UserError(f"bad --augment {text!r}; valid: none, default (all of them), or "
                        f"names joined by '+' from {', '.join(AUGMENTATIONS)}")
    return names


# TrainConfig fields added after runs were recorded without them, whose default is what those
# runs did.
TRAIN_ADDED = {"mixup": 0.0, "label_smoothing": 0.0}


def with_defaults(record: dict) -> dict:
    """A config or search record whose `data` and `features` are filled with their
    dataclasses' defaults for fields it does not have (records written before those fields
    existed, whose behaviour the defaults keep), so that it compares equal to today's record
    of the same settings. Of `train`, only the fields in TRAIN_ADDED are filled: a record
    without `min_epoch_steps` trained with other epochs and other buckets, and is continued
    by none of today's runs, while one without `mixup` (or `label_smoothing`) trained without it."""
    filled = dict(record)
    for key, kind in (("data", DataConfig), ("features", FeatureConfig)):
        if isinstance(record.get(key), dict):
            defaults = {f.name: f.default for f in dataclasses.fields(kind)
                        if f.default is not dataclasses.MISSING}
            filled[key] = {**json.loads(json.dumps(defaults)), **record[key]}
    if isinstance(record.get("train"), dict):
        filled["train"] = {**TRAIN_ADDED, **record["train"]}
    return filled


def feature_defaults(data_name: str) -> FeatureConfig:
    """The FeatureConfig a data set is read with when no feature option is given."""
    return FeatureConfig(**BUILTIN_FEATURES.get(data_name, {}))


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
        min_epoch_steps: optimizer steps per epoch at least. An epoch is a pass over the
            training data unless that is fewer steps: on small data it then spans several
            passes, so that the epoch budget, the patience and the learning-rate schedule
            still mean thousands of steps, not a few dozen.
        batch_size: examples per batch.
        lr: (initial) learning rate.
        optimizer: `adam`, `adamw` or `sgd` (with `momentum`).
        momentum: SGD momentum.
        weight_decay: decoupled weight decay (0 for none).
        clipnorm: clip each gradient to this norm (None for no clipping).
        schedule: `constant`, `cosine` (decay to 0 over all epochs), `cosine-restarts`
            (first period `t0` epochs, each next one `t_mult` times longer) or `plateau`
            (divide by 10 after `patience // 2` epochs without improvement).
        t0: first cosine-restart period in epochs.
        t_mult: growth of each cosine-restart period.
        monitor: metric that picks the best epoch and drives early stopping.
        patience: epochs without a better `monitor` before stopping. 10, not fewer: when
            spoken-digits validated on 6 speakers, with 6 seed 0 of gru_attention stopped at
            epoch 9 with 0.974 where 10 gives 0.990 (5 seeds: 0.9865 +- 0.0093 with 6,
            0.9904 +- 0.0030 with 10; results/README.md).
        class_weights: weigh examples by inverse class frequency (imbalanced data).
        overfit_batches: train on this many batches only, as a sanity check (None: off).
        spec_augment: SpecAugment-style time and frequency masking while training.
        augment: waveform augmentations of the training batches (kerasaudio/augment.py),
            applied on the fly; needs a data set that keeps its audio.
        mixup: mixup's alpha: each training example is mixed with another of its batch, with
            a Beta(alpha, alpha) weight, and so are their targets (0: off).
        label_smoothing: each class target moved this far towards uniform (0: off): the
            true class weighs 1 - label_smoothing + label_smoothing / classes.
        window_edge: how frame windows are filled past an utterance's ends (`repeat`, `zero`).
        seed: seeds Python, NumPy, TensorFlow and the input pipeline's shuffling.
        strategy: `default` (one device), `mirrored` (every local GPU, or every logical CPU)
            or `multiworker` (the machines of TF_CONFIG); `batch_size` is per replica.
        task_weights: task name -> weight of its loss in a multitask model's summed loss
            (a task not named weighs 1).
    """

    epochs: int = 40
    min_epoch_steps: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    clipnorm: float | None = None
    schedule: str = "constant"
    t0: int = 2
    t_mult: float = 2.0
    monitor: str = "val_loss"
    patience: int = 10
    class_weights: bool = False
    overfit_batches: int | None = None
    spec_augment: bool = False
    augment: tuple = ()
    mixup: float = 0.0
    label_smoothing: float = 0.0
    window_edge: str = "repeat"
    seed: int = 0
    strategy: str = "default"
    task_weights: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FinetuneConfig:
    """Transfer learning from an earlier run.

    Attributes:
        source: the run directory whose best.keras gives the backbone (heads are replaced).
        freeze_epochs: epochs that train the new heads alone, the backbone frozen.
        lr_factor: the learning rate is multiplied by this once the backbone is unfrozen,
            so the new heads' early gradients do not wreck what it learned.
    """

    source: str
    freeze_epochs: int = 5
    lr_factor: float = 0.1


@dataclass(frozen=True)
class RunConfig:
    """Everything one `fit` needs; written to config.json in the run directory."""

    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "results/runs"
    finetune: FinetuneConfig | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(
            data=DataConfig(**{**d["data"], "tasks": tuple(d["data"].get("tasks", ()))}),
            features=FeatureConfig(**d["features"]),
            model=ModelConfig(**d["model"]),
            train=TrainConfig(**d["train"]),
            out=d["out"],
            finetune=FinetuneConfig(**d["finetune"]) if d.get("finetune") else None,
        )


@dataclass(frozen=True)
class Task:
    """One prediction target of a data set.

    Attributes:
        name: the target's name; also the name of the model output that predicts it.
        kind: `classification` (softmax, cross-entropy, accuracy) or `regression` (one
            value, mean squared error, Spearman correlation).
        num_classes: number of classes of a classification target.
        level: `sequence` (one label per sequence) or `frame` (one label per frame).
        bounded: a regression target known to lie in [0, 1]: its output is a sigmoid
            (otherwise linear).
    """

    name: str
    kind: str = "classification"
    num_classes: int = 0
    level: str = "sequence"
    bounded: bool = False


@dataclass(frozen=True)
class DatasetRecord:
    """What a run records of its data in config.json ("dataset"): enough for evaluation,
    comparison and prediction to work from the run directory alone.

    Attributes:
        name: the data set's name or path.
        tasks: its prediction targets, in order.
        class_names: task name -> class names by index (classification tasks).
        examples: split -> number of examples.
        class_counts: task name -> split -> examples per class (classification tasks).
        n_features: values per frame.
        skipped: the problems of the examples a reader left out (`--skip-bad`).
        fingerprint: `Dataset.fingerprint` of the examples as split ("" in records from
            before it was kept).
    """

    name: str
    tasks: tuple = ()
    class_names: dict = field(default_factory=dict)
    examples: dict = field(default_factory=dict)
    class_counts: dict = field(default_factory=dict)
    n_features: int = 0
    skipped: tuple = ()
    fingerprint: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetRecord":
        return cls(**{**d, "tasks": tuple(Task(**t) for t in d.get("tasks", ())),
                      "skipped": tuple(d.get("skipped", ()))})

    def first_classification(self) -> Task | None:
        """The task whose accuracy and baselines stand for the run in tables."""
        return next((t for t in self.tasks if t.kind == "classification"), None)
