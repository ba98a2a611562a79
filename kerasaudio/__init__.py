"""kerasaudio: train, tune, evaluate and export Keras models on audio features."""

__version__ = "0.1.0"
