"""GRPO's server-mode generation path against a real `trl vllm-serve` (CPU), started by the test.

In server mode TRL processes each image on the server, then places its features on the runs of
image pads of the trainer's (expanded) prompt, so the expanded prompt must reach the server as it
is; SpeciaRLVLLMGeneration collapses image pads in colocate mode only. What runs here is TRL's own
client with the features placed exactly as its VLLMGeneration places them.

Not run here: weight sync in server mode. TRL 1.16 pushes weights to the server only through
vLLM's NCCL weight-transfer engine, which needs CUDA (VLLMClient.init_communicator refuses a CPU
device), so a GRPO run in server mode cannot start on a CPU-only machine.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import httpx
import pytest
from PIL import Image
from vllm_world import DATASET, VLLM_TESTS

pytestmark = VLLM_TESTS
MAX_TOKENS = 32


@pytest.fixture(scope="module")
def trl_server(fine_level_policy, tmp_path_factory):
    """`trl vllm-serve` on 127.0.0.1 for the warm policy; yields its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log_path = tmp_path_factory.mktemp("trl-serve") / "serve.log"
    trl = os.path.join(os.path.dirname(sys.executable), "trl")
    command = [
        trl,
        "vllm-serve",
        "--model",
        str(fine_level_policy),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "512",
        "--enforce-eager",
    ]
    env = {**os.environ, "VLLM_SERVER_DEV_MODE": "1"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert process.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "trl vllm-serve not up within 10 minutes"
            try:
                if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield base_url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_server_mode_generates_from_the_expanded_prompt_with_one_expansion(trl_server, fine_level_policy, prepared_dir):
    from trl.generation.vllm_client import VLLMClient
    from trl.generation.vllm_generation import VLLMGeneration

    from speciarl.data.prepared import read_split
    from speciarl.policy.generation import SamplingConfig, make_backend
    from speciarl.policy.params import PolicyParams
    from speciarl.policy.prompts import build_messages, get_prompt

    rows = read_split(prepared_dir, DATASET, "test", columns=["image"]).to_pylist()
    images = [Image.open(io.BytesIO(row["image"])).convert("RGB") for row in rows]
    transformers_backend = make_backend(PolicyParams(model=str(fine_level_policy), device="cpu"))
    processor = transformers_backend.processor
    text = processor.apply_chat_template(
        build_messages(get_prompt("general")), add_generation_prompt=True, tokenize=False
    )
    expanded = [
        processor(text=[text], images=[image], return_tensors="pt")["input_ids"][0].tolist() for image in images
    ]
    pads = expanded[0].count(processor.image_token_id)
    assert pads > 1

    client = VLLMClient(base_url=trl_server, connection_timeout=60)
    features = client.image_features([[image] for image in images])
    placer = SimpleNamespace(processing_class=processor)
    placed = [
        VLLMGeneration._place_features(placer, feature, ids) for feature, ids in zip(features, expanded, strict=True)
    ]
    output = client.generate(
        prompts=expanded,
        features=placed,
        n=1,
        temperature=0.0,
        max_tokens=MAX_TOKENS,
        generation_kwargs={
            "logit_bias": {str(t): -100.0 for t in transformers_backend.suppressed},
            "skip_special_tokens": False,
        },
    )
    assert output["prompt_ids"] == expanded  # the server used the prompt as given: one expansion
    served = [transformers_backend.decode(ids) for ids in output["completion_ids"]]
    local = [
        texts[0]
        for texts in transformers_backend.generate(
            images, get_prompt("general"), SamplingConfig(max_new_tokens=MAX_TOKENS)
        )
    ]
    agreeing = sum(a == b for a, b in zip(served, local, strict=True))
    print(f"agreement: {agreeing} of {len(images)} images")  # the figure the README reports (pytest -rP)
    assert agreeing >= 0.95 * len(images)
