"""A tiny hand-wired Llama judge for `transformers serve` tests, written with numpy (no torch import).

Attention and MLP outputs are zero, so each position's hidden state is its own token's one-hot
embedding and the next token depends only on the current one (a bigram table in lm_head). After
the assistant tag it says REPLY[0], then REPLY[1], ..., then end of sequence: with max_tokens=1
the reply is "specific" (a label), with more it is "specific wrong" (garbage to a strict parser).
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import Tokenizer, models, pre_tokenizers

SPECIAL = ["[PAD]", "[UNK]", "<|eos|>", "<|system|>", "<|user|>", "<|assistant|>"]
WORDS = ["specific", "wrong", "more", "less", "generic", "abstain", "truth", "prediction"]
REPLY = ("specific", "wrong")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
HIDDEN, HEADS, FFN = 32, 2, 8


def build_tiny_judge(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(SPECIAL + WORDS)}
    size = len(vocab)
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(SPECIAL)
    tokenizer.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "unk_token": "[UNK]",
                "pad_token": "[PAD]",
                "eos_token": "<|eos|>",
                "model_max_length": 2048,
            }
        )
    )
    (path / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    (path / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "vocab_size": size,
                "hidden_size": HIDDEN,
                "intermediate_size": FFN,
                "num_hidden_layers": 1,
                "num_attention_heads": HEADS,
                "num_key_value_heads": HEADS,
                "max_position_embeddings": 2048,
                "rms_norm_eps": 1e-6,
                "tie_word_embeddings": False,
                "eos_token_id": vocab["<|eos|>"],
                "pad_token_id": vocab["[PAD]"],
                "bos_token_id": None,
                "dtype": "float32",
            }
        )
    )
    (path / "generation_config.json").write_text(
        json.dumps(
            {
                "eos_token_id": vocab["<|eos|>"],
                "pad_token_id": vocab["[PAD]"],
                "do_sample": False,
            }
        )
    )

    zeros = lambda *shape: np.zeros(shape, dtype=np.float32)  # noqa: E731
    embed = zeros(size, HIDDEN)
    embed[:, :size] = np.eye(size, dtype=np.float32)
    follows = {index: vocab["<|eos|>"] for index in range(size)}
    chain = ["<|assistant|>", *REPLY]
    for current, following in pairwise(chain):
        follows[vocab[current]] = vocab[following]
    lm_head = zeros(size, HIDDEN)
    for current, following in follows.items():
        lm_head[following, current] = 10.0
    layer = "model.layers.0."
    tensors = {
        "model.embed_tokens.weight": embed,
        "model.norm.weight": np.ones(HIDDEN, dtype=np.float32),
        "lm_head.weight": lm_head,
        layer + "input_layernorm.weight": np.ones(HIDDEN, dtype=np.float32),
        layer + "post_attention_layernorm.weight": np.ones(HIDDEN, dtype=np.float32),
        **{
            layer + f"self_attn.{name}.weight": zeros(HIDDEN, HIDDEN)
            for name in ("q_proj", "k_proj", "v_proj", "o_proj")
        },
        layer + "mlp.gate_proj.weight": zeros(FFN, HIDDEN),
        layer + "mlp.up_proj.weight": zeros(FFN, HIDDEN),
        layer + "mlp.down_proj.weight": zeros(HIDDEN, FFN),
    }
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path
