"""GRPO training with TRL and the SpeciaRL / baseline rewards."""
