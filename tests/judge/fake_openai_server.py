"""A fault-injecting OpenAI-compatible judge server, run as a subprocess by tests and benchmarks.

    python fake_openai_server.py --port PORT --config CONFIG.json

CONFIG keys:
  api_key        bearer key every /v1 request must carry
  model          served model name (default "fake-judge")
  owned_by       what /v1/models reports ("vllm" makes the client send structured outputs)
  labels         {"<truth>\\t<prediction>": "<category>"}: the right answer per pair
  default_label  answer for pairs not in `labels` (default: none, such pairs get HTTP 400)
  delay_s        sleep before every answer
  script         {"<truth>\\t<prediction>": ["500" | "hang" | "garbage", ...]}: what the first
                 attempts at a pair get before the right answer ("hang" sleeps hang_s, then 500)
  garbage        [pair, ...]: pairs that only ever get a garbage reply
  hang_s         how long a "hang" lasts (default 30)
  die_after      after this many answered pairs, the next request kills the server (os._exit)
  successes_file each right answer's pair is appended here once the response has been sent, so the
                 file counts what the client can have received, across restarts
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from collections import Counter

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

_PAIR = re.compile(r"Ground truth: (.*)\nPrediction: (.*)\Z", re.DOTALL)


def build_app(config: dict) -> FastAPI:
    app = FastAPI()
    model = config.get("model", "fake-judge")
    expected_auth = f"Bearer {config['api_key']}"
    attempts: Counter = Counter()
    seen = {"requests": 0, "answered": 0, "inflight": 0, "max_inflight": 0, "structured": 0, "plain": 0}
    successes_fd = (
        os.open(config["successes_file"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        if config.get("successes_file")
        else None
    )

    async def record_success(pair: str) -> None:
        # Runs right after the response bytes went to the socket, with no await in between (no
        # middleware buffers the response), so a later os._exit cannot separate the two.
        if successes_fd is not None:
            os.write(successes_fd, (pair + "\n").encode())

    def refused(request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != expected_auth:
            return JSONResponse({"error": {"message": "bad key", "type": "invalid_request_error"}}, status_code=401)
        return None

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/stats")
    async def stats():
        return seen

    @app.get("/v1/models")
    async def models(request: Request):
        if (error := refused(request)) is not None:
            return error
        return {
            "object": "list",
            "data": [{"id": model, "object": "model", "created": 0, "owned_by": config.get("owned_by", "fake")}],
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request, body: dict):
        if (error := refused(request)) is not None:
            return error
        seen["requests"] += 1
        if config.get("die_after") is not None and seen["answered"] >= config["die_after"]:
            os._exit(1)  # a crash: requests in flight get no answer
        if body.get("model") != model:
            return JSONResponse({"error": {"message": f"model {body.get('model')!r} not found"}}, status_code=404)
        match = _PAIR.search(body["messages"][-1]["content"])
        if match is None or body.get("temperature") != 0:
            return JSONResponse({"error": {"message": "not a judge request at temperature 0"}}, status_code=400)
        pair = f"{match.group(1)}\t{match.group(2)}"
        structured = body.get("structured_outputs", {}).get("choice")
        seen["structured" if structured else "plain"] += 1
        seen["inflight"] += 1
        seen["max_inflight"] = max(seen["max_inflight"], seen["inflight"])
        try:
            attempts[pair] += 1
            script = config.get("script", {}).get(pair, [])
            action = script[attempts[pair] - 1] if attempts[pair] <= len(script) else "answer"
            await asyncio.sleep(config.get("delay_s", 0.0))
            if action == "hang":
                await asyncio.sleep(config.get("hang_s", 30.0))
                action = "500"
            if action == "500":
                return JSONResponse({"error": {"message": "injected server error"}}, status_code=500)
            if action == "garbage" or pair in config.get("garbage", []):
                return _completion(model, "The answer is probably specific, I think.")
            label = config.get("labels", {}).get(pair, config.get("default_label"))
            if label is None:
                return JSONResponse({"error": {"message": f"no label for {pair!r}"}}, status_code=400)
            if structured is not None and label not in structured:
                return JSONResponse({"error": {"message": f"{label!r} not among the choices"}}, status_code=400)
            seen["answered"] += 1
            return _completion(model, label, background=BackgroundTask(record_success, pair))
        finally:
            seen["inflight"] -= 1

    return app


def _completion(model: str, text: str, background: BackgroundTask | None = None) -> JSONResponse:
    return JSONResponse(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
        background=background,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    uvicorn.run(build_app(config), host="127.0.0.1", port=args.port, log_level="error", access_log=False)


if __name__ == "__main__":
    main()
