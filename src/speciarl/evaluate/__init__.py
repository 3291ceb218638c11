"""Evaluation: metrics, per-sample verdict tables, plots and the report."""
