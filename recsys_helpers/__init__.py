"""Helpers for the Deep Learning for Recommender Systems course.

One module per concern: ``data`` (loading), ``split``, ``metrics``, ``beyond_accuracy`` (diversity, novelty,
popularity bias, calibration), ``evaluation``, ``baselines``, ``models``, ``results``, ``env`` (seeding,
environment, quiet TensorFlow start-up), ``plots``, ``exercises`` and ``runner`` (the ``python -m recsys_helpers``
command). Importing the package does not import TensorFlow.
"""
__version__ = "0.1.0"
