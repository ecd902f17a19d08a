"""OpenAIPolicy against a real local HTTP server (tts_utils.models.serve) serving a tiny random model."""

import contextlib
import socket
import threading

import pytest
from _tiny_lm import MULTI, SPECIAL, make_model, make_tokenizer

from tts_utils.models.policy import (
    OpenAIError,
    OpenAIPolicy,
    SamplingParams,
    TransformersPolicy,
    normalize_stop,
)
from tts_utils.models.serve import CompletionHandler, make_server

EOT = "<|eot_id|>"
ONE_CHAR = {t: -100.0 for t in SPECIAL + MULTI if t != EOT}  # one token per character, as in test_policy


@contextlib.contextmanager
def serving(policy, handler=None):
    server = make_server(policy, port=0, model_name="tiny", handler=handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="module")
def local(tok):
    # "\n" made likely so that steps end within a few tokens; EOS possible too.
    return TransformersPolicy(make_model(tok, bias={**ONE_CHAR, "\n": 1.5, EOT: 0.5}), tok, "tiny", name="tiny")


@pytest.fixture(scope="module")
def server(local):
    with serving(local) as s:
        yield s


@pytest.fixture(scope="module")
def prompts(local):
    return [local.build_prompt(q, steps) for q, steps in
            [("1+2=?", []), ("12*(3+4)-5=?", ["12*7=84\n\n"]), ("7?", []), ("9-3=?", [])]]


def client(server, tok, **kw):
    return OpenAIPolicy(server.base_url, "tiny", tokenizer=tok, family="tiny", **kw)


def test_same_samples_as_the_local_policy(server, local, tok, prompts):
    params = SamplingParams(temperature=0.8, max_tokens=20)
    seeds = list(range(16))
    remote = client(server, tok, concurrency=4).generate(prompts * 4, params, seeds)
    assert remote == local.generate(prompts * 4, params, seeds)
    assert {g.finish_reason for g in remote} == {"stop", "eos", "length"}
    for g in remote:
        n_text = len(tok(g.text, add_special_tokens=False)["input_ids"])
        assert g.num_tokens == n_text + (g.finish_reason == "eos")
        assert g.text.endswith("\n\n") == (g.finish_reason == "stop")
    # Seeds make samples reproducible, in any order and any batch.
    again = client(server, tok, concurrency=2).generate(prompts[::-1], params, seeds[:4][::-1])
    assert again == remote[:4][::-1]


def test_stop_string_put_back_when_the_server_drops_it(server, local, tok, prompts):
    params = SamplingParams(temperature=0.8, max_tokens=20)
    seeds = list(range(8))
    # The server's default: the stop string is not in the text; its stop_reason names it.
    dropped = client(server, tok, extra_body={"include_stop_str_in_output": False}).generate(prompts * 2, params, seeds)
    assert dropped == local.generate(prompts * 2, params, seeds)
    assert any(g.finish_reason == "stop" for g in dropped)


def test_greedy_and_no_stop(server, local, tok, prompts):
    params = SamplingParams(temperature=0, max_tokens=12, stop=None)
    assert client(server, tok).generate(prompts, params, [1, 2, 3, 4]) == local.generate(prompts, params, [5, 6, 7, 8])


def test_client_errors_are_clear_and_not_retried(server, tok, prompts):
    calls = []

    class Counting(CompletionHandler):
        def do_POST(self):
            calls.append(self.path)
            super().do_POST()

    with serving(server.policy, handler=Counting) as s:
        with pytest.raises(OpenAIError, match=r"rejected the request \(404\): the model 'nope' does not exist"):
            OpenAIPolicy(s.base_url, "nope", tokenizer=tok, family="tiny").generate(prompts[:1], SamplingParams(), [0])
        assert len(calls) == 1
        with pytest.raises(OpenAIError, match=r"\(400\): only n=1"):
            client(s, tok, extra_body={"n": 2}).generate(prompts[:1], SamplingParams(), [0])
        with pytest.raises(OpenAIError, match=r"\(400\): prompt 0 has \d+ tokens"):
            client(s, tok).generate(["x" * 600], SamplingParams(), [0])


def test_transient_errors_are_retried(local, tok, prompts):
    failures = {"left": 2}
    calls = []

    class Flaky(CompletionHandler):
        def do_POST(self):
            calls.append(1)
            if failures["left"]:
                failures["left"] -= 1
                self.rfile.read(int(self.headers["Content-Length"]))  # unread data would reset the connection
                self.send_error_json(503, "warming up")
                return
            super().do_POST()

    params = SamplingParams(temperature=0.8, max_tokens=10)
    with serving(local, handler=Flaky) as s:
        [g] = client(s, tok).generate(prompts[:1], params, [3])
    assert len(calls) == 3 and g == local.generate(prompts[:1], params, [3])[0]
    failures["left"] = 5
    with serving(local, handler=Flaky) as s, pytest.raises(OpenAIError, match="giving up after 3 attempts.*503.*warming up"):
        client(s, tok, max_retries=2).generate(prompts[:1], params, [3])


def test_unreachable_server_gives_up_with_a_clear_error(tok):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = OpenAIPolicy(f"http://127.0.0.1:{port}/v1", "tiny", tokenizer=tok, family="tiny",
                          max_retries=1)
    with pytest.raises(OpenAIError, match="giving up after 2 attempts.*(refused|URLError)"):
        policy.generate(["hi"], SamplingParams(), [0])


@pytest.mark.parametrize("text, reason, matched, expected", [
    ("a\n\n", "stop", "\n\n", ("a\n\n", "stop")),      # vLLM with include_stop_str_in_output
    ("a", "stop", "\n\n", ("a\n\n", "stop")),          # stop string dropped, reported in stop_reason
    ("a", "stop", None, ("a", "eos")),                 # vLLM: stop_reason None is EOS
    ("a", "stop", 128009, ("a", "eos")),               # a stop token id
    ("a\n\nb", "stop", None, ("a\n\n", "stop")),       # more text than the stop: cut after it
    ("a\n\n", None, None, ("a\n\n", "stop")),          # no finish_reason at all
    ("a\n\nb", "length", None, ("a\n\nb", "length")),
])
def test_normalize_stop(text, reason, matched, expected):
    assert normalize_stop(text, reason, matched, ("\n\n",)) == expected


def test_normalize_stop_rejects_unknown_reasons():
    with pytest.raises(ValueError, match="content_filter"):
        normalize_stop("a", "content_filter", None, ("\n\n",))
