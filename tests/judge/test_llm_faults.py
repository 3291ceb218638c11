"""The LLM judge against a real fault-injecting OpenAI-compatible server (a subprocess on loopback):
HTTP 500s, timeouts, garbage replies, a crash mid-run and a restart. Whatever happens, every
verdict that arrives is stored, nothing wrong is stored, and no pair is answered twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from judge_fakes import API_KEY, free_port

from speciarl import cli
from speciarl.judge.cascade import JudgeService
from speciarl.judge.llm import LLMJudge
from speciarl.judge.params import LLMParams
from speciarl.judge.prompt import LABELS
from speciarl.judge.store import VerdictStore

KEY_ENV = "FAKE_JUDGE_KEY"


def labelled_pairs(n: int) -> dict[tuple[str, str], str]:
    """n (truth, prediction) pairs no taxonomy can decide, with the category the server gives each."""
    return {(f"truth {i}", f"guess {i}"): LABELS[i % len(LABELS)] for i in range(n)}


def tsv(pair: tuple[str, str]) -> str:
    return "\t".join(pair)


def make_llm(server, **overrides) -> LLMJudge:
    settings = dict(concurrency=4, timeout_s=0.5, max_attempts=3, backoff_s=0.01, constrain="auto")
    settings.update(overrides)
    return LLMJudge("fake-judge", base_url=server.url, api_key=API_KEY, **settings)


def stored_categories(store_dir, judge_id: str) -> dict[tuple[str, str], str]:
    store = VerdictStore(store_dir)
    return {(v.ground_truth, v.prediction): v.category.value for v in store.iter_verdicts() if v.judge == judge_id}


def test_errors_timeouts_and_garbage_are_retried_and_garbage_never_stored(fake_server, tmp_path):
    truth = labelled_pairs(12)
    pairs = list(truth)
    server = fake_server(
        {
            "labels": {tsv(p): c for p, c in truth.items()},
            "script": {
                tsv(pairs[0]): ["500"],
                tsv(pairs[1]): ["hang"],
                tsv(pairs[2]): ["garbage"],
                tsv(pairs[3]): ["500", "500"],
            },
            "garbage": [tsv(pairs[4])],
            "hang_s": 2.0,
            "delay_s": 0.02,
            "owned_by": "vllm",
        }
    )
    llm = make_llm(server)
    with JudgeService(VerdictStore(tmp_path / "store"), {}, llm) as service:
        categories = service.judge([("nodata", t, p) for t, p in pairs])
        stats = service.stats
    expected = [None if i == 4 else truth[pair] for i, pair in enumerate(pairs)]
    assert [c and c.value for c in categories] == expected
    # 1 + 1 + 1 + 2 retries that succeeded, and 2 for the pair that never gets a label
    assert (stats["llm"], stats["failures"], stats["retries"], stats["llm_calls"]) == (11, 1, 7, 11 + 5 + 3)
    assert "unparseable reply" in stats["failure_examples"][0]["error"]
    assert stats["failure_examples"][0]["prediction"] == pairs[4][1]

    stored = stored_categories(tmp_path / "store", llm.judge_id)
    assert stored == {pair: truth[pair] for i, pair in enumerate(pairs) if i != 4}
    assert server.successes() == {pair: 1 for i, pair in enumerate(pairs) if i != 4}
    seen = server.stats()
    assert seen["max_inflight"] <= 4
    assert seen["structured"] == seen["requests"] == 19  # vLLM: replies constrained to the six labels

    # A second run asks only for the pair that has no verdict.
    with JudgeService(VerdictStore(tmp_path / "store"), {}, make_llm(server)) as service:
        service.judge([("nodata", t, p) for t, p in pairs])
        assert service.stats["store_hits"] == 11
    assert server.stats()["requests"] - seen["requests"] == 3


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """The `speciarl judge` command, in this process (the entry point itself runs in a subprocess below)."""
    code = cli.main(["judge", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_survives_a_server_crash_and_completes_after_restart(fake_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    truth = labelled_pairs(40)
    pairs = list(truth)
    records = [{"ground_truth": t.upper(), "prediction": f" {p}!"} for t, p in pairs]  # raw: normalised by the judge
    records += [{"ground_truth": "TRUTH 7", "prediction": "guess 7"}, {"ground_truth": "truth 1", "prediction": None}]
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    server = fake_server(
        {
            "labels": {tsv(p): c for p, c in truth.items()},
            "delay_s": 0.03,
            "die_after": 15,
            "script": {tsv(pairs[0]): ["500"], tsv(pairs[1]): ["garbage"]},
            "garbage": [tsv(pairs[2]), tsv(pairs[3])],
        }
    )
    args = [
        "--pairs",
        str(pairs_file),
        "--store",
        str(tmp_path / "store"),
        "--llm-endpoint",
        server.url,
        "--llm-model",
        "fake-judge",
        "--api-key-env",
        KEY_ENV,
        "--concurrency",
        "4",
        "--timeout-s",
        "2",
        "--max-attempts",
        "2",
        "--backoff-s",
        "0.01",
    ]

    code, out, err = run_cli(args, capsys)
    assert code == 1, err
    assert server.wait_exit() != 0  # the server crashed mid-run
    stats = json.loads(out)
    assert stats["unique"] == 40 and stats["pairs"] == 41  # duplicate merged, format error skipped
    assert stats["failures"] >= 2 and "rerun to judge the rest" in err
    assert any("unparseable reply" in e["error"] for e in stats["failure_examples"])
    llm_id = LLMJudge.from_params(LLMParams(endpoint=server.url, model="fake-judge", api_key_env=KEY_ENV)).judge_id
    stored = stored_categories(tmp_path / "store", llm_id)
    assert 15 <= len(stored) < 40
    assert all(truth[pair] == category for pair, category in stored.items())  # nothing wrong stored
    assert set(stored) == set(server.successes())  # every answer that was sent got stored

    server.start(die_after=None, garbage=[])  # restart on the same port
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert json.loads(out)["store_hits"] == len(stored)
    assert stored_categories(tmp_path / "store", llm_id) == truth
    assert server.successes() == {pair: 1 for pair in pairs}  # no pair judged twice, across both runs
    seen = server.stats()
    assert seen["requests"] == seen["plain"] == 40 - len(stored)  # not vLLM: plain requests, strict parsing

    code, _, _ = run_cli(args, capsys)  # everything stored: no request at all
    assert code == 0 and server.stats()["requests"] == seen["requests"]


def test_killing_the_judge_loses_only_the_requests_in_flight(fake_server, tmp_path):
    truth = labelled_pairs(80)
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps({"ground_truth": t, "prediction": p}) + "\n" for t, p in truth))
    server = fake_server({"labels": {tsv(p): c for p, c in truth.items()}, "delay_s": 0.05})
    args = [
        "--pairs",
        str(pairs_file),
        "--store",
        str(tmp_path / "store"),
        "--llm-endpoint",
        server.url,
        "--llm-model",
        "fake-judge",
        "--api-key-env",
        KEY_ENV,
        "--concurrency",
        "4",
    ]
    judge = subprocess.Popen(
        [sys.executable, "-m", "speciarl.cli", "judge", *args],
        env={**os.environ, KEY_ENV: API_KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while server.stats()["answered"] < 20:
        assert judge.poll() is None, "the judge finished before it could be killed"
        time.sleep(0.01)
    judge.kill()  # SIGKILL, mid-run
    judge.wait()
    answered = server.stats()["answered"]
    llm_id = LLMJudge(
        "fake-judge", base_url=server.url, api_key=API_KEY, chat_template_kwargs=LLMParams().chat_template_kwargs
    ).judge_id
    stored = stored_categories(tmp_path / "store", llm_id)
    assert set(stored) <= set(server.successes()) and all(truth[p] == c for p, c in stored.items())
    assert len(stored) >= answered - 2 * 4  # at most the replies in flight and one write batch are lost


def test_a_refused_key_or_unknown_model_stops_with_one_line(fake_server, tmp_path, monkeypatch, capsys):
    server = fake_server({"default_label": "wrong"})
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text(json.dumps({"ground_truth": "a", "prediction": "b"}) + "\n")
    args = [
        "--pairs",
        str(pairs_file),
        "--store",
        str(tmp_path / "store"),
        "--llm-endpoint",
        server.url,
        "--llm-model",
        "fake-judge",
        "--api-key-env",
        KEY_ENV,
        "--backoff-s",
        "0.01",
    ]
    wrong = subprocess.run(  # the installed entry point, with a wrong key
        [sys.executable, "-m", "speciarl.cli", "judge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, KEY_ENV: "not-the-key"},
    )
    assert wrong.returncode == 2 and "refused the request" in wrong.stderr and "Traceback" not in wrong.stderr

    monkeypatch.delenv(KEY_ENV, raising=False)
    code, _, err = run_cli(args, capsys)
    assert code == 2 and f"environment variable {KEY_ENV} (--api-key-env) is not set" in err

    monkeypatch.setenv(KEY_ENV, API_KEY)
    code, _, err = run_cli([*args, "--llm-model", "no-such-model"], capsys)
    assert code == 2 and "refused the request" in err and "not found" in err
    assert server.stats()["requests"] == 1  # the 404 is not retried
    assert len(VerdictStore(tmp_path / "store")) == 0


def test_unreachable_server_gives_no_verdicts_and_no_error(tmp_path):
    llm = LLMJudge("m", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="k", max_attempts=2, backoff_s=0.01)
    with JudgeService(VerdictStore(tmp_path / "store"), {}, llm) as service:
        assert service.judge([("d", "t", "p"), ("d", "t", "none")]) == [None, "abstain"]
        assert service.stats["failures"] == 1 and "cannot list models" in service.stats["failure_examples"][0]["error"]
