"""Datasets: taxonomies, prepared parquet splits, the six real datasets and the mini world."""
