"""Verdicts: the judge cascade, the LLM judge client and the verdict store."""
