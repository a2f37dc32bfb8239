"""Regime labels (training only), walk-forward CV, the regime classifier, evaluation, the MLflow registry."""
