"""speciarl: specificity-aware reinforcement learning for open-world fine-grained classification."""

__version__ = "0.1.0"
