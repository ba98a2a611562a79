"""Hyperparameter search with KerasTuner: search spaces (spaces.py) and searches (search.py)."""
