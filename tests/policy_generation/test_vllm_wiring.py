"""The vllm backend's wiring, on CPU: vLLM itself needs CUDA, so a stand-in `vllm` module records
what the backend asks of it (engine options, requests, sampling params, LoRA) and answers like the
engine does. The tiny policy's real processor builds the prompts."""

import sys
import types

import numpy as np
import pyarrow.parquet as pq
import pytest
from generation_world import DATASET
from PIL import Image

from speciarl.policy import rollouts
from speciarl.policy.generation import SamplingConfig, VllmBackend, chat_text, import_vllm, make_backend
from speciarl.policy.params import HarvestParams, PolicyParams
from speciarl.policy.processor import vision_token_ids
from speciarl.policy.prompts import get_prompt
from speciarl.predictions import PREDICTION_SCHEMA

PROMPT = get_prompt("general")


class FakeLLM:
    def __init__(self, **options):
        self.options = options
        self.calls = []

    def generate(self, requests, sampling_params, lora_request=None, use_tqdm=True):
        self.calls.append({"requests": requests, "params": sampling_params, "lora": lora_request})
        return [
            types.SimpleNamespace(
                outputs=[
                    types.SimpleNamespace(
                        text=f"<think>looks like one</think><answer>label {i}.{k}</answer><|im_end|>", token_ids=[7] * 9
                    )
                    for k in range(params.n)
                ]
            )
            for i, params in enumerate(sampling_params)
        ]


class FakeSamplingParams:
    def __init__(self, **fields):
        self.__dict__.update(fields)


class FakeLoRARequest:
    def __init__(self, lora_name, lora_int_id, lora_path):
        self.lora_name, self.lora_int_id, self.lora_path = lora_name, lora_int_id, lora_path


@pytest.fixture
def fake_vllm(monkeypatch):
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = FakeLLM, FakeSamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = FakeLoRARequest
    for name, module in {"vllm": vllm, "vllm.lora": lora, "vllm.lora.request": request}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return vllm


@pytest.fixture
def adapter(tmp_path):
    folder = tmp_path / "runs" / "speciarl" / "adapter"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    return folder


def test_missing_vllm_gives_an_installation_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails as on a machine without vLLM
    with pytest.raises(ImportError, match=r"vLLM is not installed: install the GPU extra"):
        import_vllm()


def test_engine_options_lora_requests_and_sampling_params(fake_vllm, untrained_policy, adapter):
    policy = PolicyParams(
        model=str(untrained_policy), backend="vllm", dtype="bfloat16", min_pixels=3136, max_pixels=200704
    )
    backend = make_backend(policy, adapter=adapter)
    assert isinstance(backend, VllmBackend)
    options = backend.engine.options
    assert options["model"] == str(untrained_policy) and options["dtype"] == "bfloat16"
    assert options["enable_lora"] is True and options["max_lora_rank"] == 64
    assert options["limit_mm_per_prompt"] == {"image": 1, "video": 0}
    assert options["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 200704}
    assert options["generation_config"] == "vllm"
    assert backend.lora_request.lora_path == str(adapter.resolve()) and backend.lora_request.lora_name == "speciarl"

    pictures = [Image.new("L", (112, 112), shade) for shade in (10, 200, 90)]
    texts = backend.generate(
        pictures, PROMPT, SamplingConfig(n=2, temperature=0.6, top_p=0.95, max_new_tokens=32, seed=5)
    )
    assert texts[2] == [
        "<think>looks like one</think><answer>label 2.0</answer>",
        "<think>looks like one</think><answer>label 2.1</answer>",
    ]

    assert backend.new_tokens == 3 * 2 * 9
    (call,) = backend.engine.calls
    assert call["lora"] is backend.lora_request
    prompt = chat_text(backend.processor, PROMPT)
    assert prompt.count("<|image_pad|>") == 1 and prompt.endswith("<|im_start|>assistant\n")
    for request in call["requests"]:
        assert request["prompt"] == prompt and request["multi_modal_data"]["image"].mode == "RGB"
    params = call["params"]
    assert [p.seed for p in params] == [5, 6, 7]
    first = params[0].__dict__
    assert {k: first[k] for k in ("n", "temperature", "top_p", "max_tokens", "repetition_penalty")} == {
        "n": 2,
        "temperature": 0.6,
        "top_p": 0.95,
        "max_tokens": 32,
        "repetition_penalty": 1.0,
    }
    assert first["logit_bias"] == {token: -100.0 for token in vision_token_ids(backend.processor)}
    assert first["skip_special_tokens"] is False


def test_greedy_maps_to_temperature_zero_without_lora(fake_vllm, untrained_policy):
    backend = make_backend(PolicyParams(model=str(untrained_policy), backend="vllm"))
    assert "enable_lora" not in backend.engine.options and "mm_processor_kwargs" not in backend.engine.options
    backend.generate([Image.new("RGB", (112, 112))], PROMPT, SamplingConfig(max_new_tokens=8))
    (params,) = backend.engine.calls[0]["params"]
    assert (params.n, params.temperature, params.top_p) == (1, 0.0, 1.0)
    assert backend.engine.calls[0]["lora"] is None


def test_vllm_records_match_the_prediction_schema(fake_vllm, untrained_policy, prepared, tmp_path):
    policy = PolicyParams(model=str(untrained_policy), backend="vllm", batch_size=4)
    params = HarvestParams(out=str(tmp_path / "rollouts.parquet"), dataset=DATASET, split="train", n=3, max_images=5)
    table = rollouts.harvest(policy, params, prepared, progress=False)
    assert table.schema.equals(PREDICTION_SCHEMA)
    assert pq.read_table(tmp_path / "rollouts.parquet").schema.equals(PREDICTION_SCHEMA)
    rows = table.to_pylist()
    assert len(rows) == 15 and len({row["sample_id"] for row in rows}) == 5
    assert [row["sample_index"] for row in rows[:3]] == [0, 1, 2]
    assert rows[4]["prediction"] == "label 1.1" and not rows[4]["format_error"]
    assert all(row["prompt_text"] == PROMPT and row["policy_id"] == "base" for row in rows)
    assert rows[0]["seed"] == rollouts.batch_seed(0, rows[0]["sample_id"])
    assert np.isclose(rows[0]["temperature"], 1.0)
