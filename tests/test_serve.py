"""The local completions server under hostile clients: bad fields, huge bodies, many at once."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tts_utils.models.policy import Generation, Policy, SamplingParams
from tts_utils.models.serve import make_server


class EchoPolicy(Policy):
    """Answers every prompt with its last character, after a short pause (so requests overlap)."""

    name, family = "echo", "tiny"

    def __init__(self, pause_s: float = 0.0):
        self.pause_s = pause_s
        self.calls = 0

    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> list[Generation]:
        params.validate()
        self.calls += 1
        time.sleep(self.pause_s)
        return [Generation(p[-1], 1, "length") for p in prompts]


@contextlib.contextmanager
def serving(policy: Policy, **kw):
    server = make_server(policy, port=0, model_name="echo", **kw)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def post(server, body: bytes | dict, headers: dict | None = None) -> tuple[int, dict]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", "/v1/completions", body=data,
                     headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [("seed", "abc"), ("seed", 1.5), ("stop", 5), ("stop", [""]), ("stop", ["\n", 3]),
     ("temperature", float("nan")), ("temperature", float("inf")), ("temperature", "hot"), ("top_p", None),
     ("max_tokens", "16"), ("max_tokens", 0)],
)
def test_bad_fields_are_400_naming_the_field(field, value):
    policy = EchoPolicy()
    with serving(policy) as server:
        # json.dumps writes NaN / Infinity literals, which Python's json (and the server) reads
        status, reply = post(server, {"prompt": "1+1=", field: value})
        ok_status, ok = post(server, {"prompt": "1+1=", "seed": 3, "stop": ["\n"], "temperature": 0.5})
    assert status == 400, reply
    assert field in reply["error"]["message"] or field.replace("_", " ") in reply["error"]["message"], reply
    assert ok_status == 200 and ok["choices"][0]["text"] == "="
    assert policy.calls == 1  # the bad request never reached the model


def test_oversized_body_refused_before_it_is_read():
    policy = EchoPolicy()
    with serving(policy, max_body=10_000) as server:
        start = time.perf_counter()
        status, reply = post(server, {"prompt": "x" * 12_000_000})
        elapsed = time.perf_counter() - start
        assert status == 413, reply
        assert "10000" in reply["error"]["message"]
        # the same size as a declared length that never comes: refused from the header alone
        status, _ = post(server, b"{}", headers={"Content-Length": "12000000000"})
        assert status == 413
        status, _ = post(server, {"prompt": "ok"})
        assert status == 200
    assert policy.calls == 1
    print(f"\n12 MB body refused in {elapsed:.2f} s")


def test_parallel_clients_queue_instead_of_being_reset():
    # socketserver's listen backlog of 5 reset some of 20 parallel clients and half of 100.
    policy = EchoPolicy(pause_s=0.002)
    clients = 100
    with serving(policy) as server:
        barrier = threading.Barrier(clients)

        def one(i: int) -> tuple[int, str]:
            barrier.wait(timeout=60)  # every client connects at once
            status, reply = post(server, {"prompt": f"q{i % 10}", "seed": i})
            return status, reply["choices"][0]["text"] if status == 200 else reply

        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, range(clients)))
    assert results == [(200, str(i % 10)) for i in range(clients)]
    assert policy.calls == clients
