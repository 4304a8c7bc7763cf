"""Models that turn a customer table into decisions: each a scikit-learn-style estimator usable on a
plain CSV/Parquet table, from Python and from the CLI."""
