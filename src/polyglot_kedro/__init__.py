"""polyglot_kedro: Kedro pipelines reproducing Kew, Schottmann & Sennrich (2023)."""

__version__ = "0.1.0"
