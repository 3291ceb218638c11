"""The six real datasets: one loader module per dataset (each exposes `load(params, ctx)`)."""
