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


def _wait_for(condition, what: str, deadline_s: float = 60.0) -> None:
    """Poll ``condition`` until it holds (a generous deadline: a loaded machine is slow, never wrong)."""
    end = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_too_many_prompts_is_a_413_naming_the_cap():
    # 20,000 prompts in one request held the model for 32 s
    policy = EchoPolicy()
    with serving(policy, max_prompts=50) as server:
        status, reply = post(server, {"prompt": [f"q{i}" for i in range(51)]})
        ok_status, ok = post(server, {"prompt": [f"q{i}" for i in range(50)]})
    assert status == 413 and "at most 50" in reply["error"]["message"], reply
    assert ok_status == 200 and len(ok["choices"]) == 50


def test_a_silent_connection_is_closed():
    # a client that connects and sends nothing held a thread for as long as it liked
    import socket

    with serving(EchoPolicy(), timeout_s=0.2) as server, socket.create_connection(server.server_address[:2]) as sock:
        sock.settimeout(60)  # far longer than the server's: what ends the wait is the server closing
        assert sock.recv(1024) == b""


class GatedPolicy(Policy):
    """Records each generate call's prompts; the first call waits until ``gate`` is set."""

    name, family = "gated", "tiny"

    def __init__(self):
        self.calls: list[list[str]] = []
        self.gate = threading.Event()

    def generate(self, prompts: list[str], params: SamplingParams, seeds: list[int]) -> list[Generation]:
        self.calls.append(list(prompts))
        if len(self.calls) == 1:
            assert self.gate.wait(60)
        return [Generation(p[-1], 1, "length") for p in prompts]


def test_a_small_request_waits_for_one_slice_of_a_big_one_not_all_of_it():
    # one 20,000-prompt request made a 4-token request wait 30 s. Deterministic: the big request is
    # held in its first slice until the small one has asked for its turn, then the order is checked.
    policy = GatedPolicy()
    big = [f"b{i % 10}" for i in range(64)]
    replies: dict = {}
    with serving(policy, slice_prompts=16) as server:
        first = threading.Thread(target=lambda: replies.update(big=post(server, {"prompt": big})))
        first.start()
        _wait_for(lambda: len(policy.calls) == 1, "the big request's first slice")
        second = threading.Thread(target=lambda: replies.update(small=post(server, {"prompt": "s7"})))
        second.start()
        _wait_for(lambda: server.turns.issued == 2, "the small request to ask for the model")
        policy.gate.set()
        first.join(60)
        second.join(60)
    assert policy.calls[1] == ["s7"]  # served right after the big request's first slice
    assert [len(c) for c in policy.calls] == [16, 1, 16, 16, 16]
    assert replies["small"] == (200, replies["small"][1]) and replies["small"][1]["choices"][0]["text"] == "7"
    status, reply = replies["big"]
    assert status == 200 and [c["text"] for c in reply["choices"]] == [p[-1] for p in big]
