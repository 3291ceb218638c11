"""The policy: prompts, model loading, generation backends, the mini world's tiny base policy."""
