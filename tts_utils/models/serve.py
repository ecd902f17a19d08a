"""A minimal OpenAI-compatible completions server for a local policy (standard library only).

    python -m tts_utils.models.serve data/tinyworld/<policy> --family tiny --port 8000

serves ``POST /v1/completions`` and ``GET /v1/models`` like vLLM does, for the subset this project
uses: text prompts (a string or a list), ``n=1``, ``seed``, ``temperature``, ``top_p``,
``max_tokens``, ``stop``, and vLLM's ``include_stop_str_in_output`` and ``stop_reason``. It lets
``OpenAIPolicy`` run against the tiny world (and is what its tests talk to). The model generates
for one request at a time, a slice of at most ``slice_prompts`` prompts at a time, and the slices
of concurrent requests take turns in arrival order: a 4-prompt request waits for one slice of a
big one, not for all of it. Parallel clients wait in the listen queue
(``CompletionServer.request_queue_size`` connections) and then for their turn, rather than being
reset. A body over ``max_body`` bytes is refused from its Content-Length, before it is read; more
than ``max_prompts`` prompts is a 413 naming the cap; a bad field is a 400 that names it; a
connection that sends nothing for ``timeout_s`` seconds is closed (its thread ends).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tts_utils.models.policy import Policy, SamplingParams

# 1 MiB: a quarter of a million tokens of prompt, past any context served here. Reading and
# tokenizing a 12 MB prompt took 23 s and 2.8 GB before the model refused it.
MAX_BODY = 2**20
# OpenAIPolicy sends one prompt a request; 20,000 prompts in one held the model for 32 s.
MAX_PROMPTS = 256
SLICE_PROMPTS = 16
TIMEOUT_S = 30.0  # 600 stalled clients held 605 threads for as long as they liked


class Turns:
    """The model, lent one slice at a time in arrival order. A plain Lock is not fair: the thread
    that has just released it can take it again, so a big request could keep the model to its end."""

    def __init__(self):
        self._cond = threading.Condition()
        self.issued = 0   # tickets handed out (one per slice that asked for the model)
        self._serving = 0

    @contextlib.contextmanager
    def turn(self):
        with self._cond:
            ticket = self.issued
            self.issued += 1
            self._cond.wait_for(lambda: self._serving == ticket)
        try:
            yield
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()


class BadRequest(Exception):
    def __init__(self, message: str, code: int = 400):
        super().__init__(message)
        self.code = code


class CompletionServer(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog (socketserver's default is 5): with 20 parallel clients a few
    # connections were reset, with 100 about half. Accepted ones wait for the model's lock.
    request_queue_size = 1024

    def __init__(self, address, policy: Policy, model_name: str | None = None, handler=None, verbose=False,
                 max_body: int = MAX_BODY, max_prompts: int = MAX_PROMPTS, slice_prompts: int = SLICE_PROMPTS,
                 timeout_s: float = TIMEOUT_S):
        super().__init__(address, handler or CompletionHandler)
        self.policy = policy
        self.model_name = model_name or policy.name
        self.verbose = verbose
        self.max_body = max_body
        self.max_prompts = max_prompts
        self.slice_prompts = slice_prompts
        self.timeout_s = timeout_s
        self.turns = Turns()  # one generation at a time: the model is not shared between threads

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


class CompletionHandler(BaseHTTPRequestHandler):
    server: CompletionServer

    def setup(self):
        self.timeout = self.server.timeout_s  # StreamRequestHandler sets it on the socket
        super().setup()

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)

    def send_json(self, code: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_error_json(self, code: int, message: str) -> None:
        kind = {400: "BadRequestError", 404: "NotFoundError", 411: "LengthRequiredError",
                413: "PayloadTooLargeError"}.get(code, "InternalServerError")
        self.send_json(code, {"error": {"message": message, "type": kind, "code": code}})

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model"}]})
        elif self.path == "/health":
            self.send_json(200, {})
        else:
            self.send_error_json(404, f"no route {self.path}")

    def do_POST(self):
        if self.path.rstrip("/") != "/v1/completions":
            self.send_error_json(404, f"no route {self.path}")
            return
        try:
            req = self.read_body()
            self.send_json(200, self.complete(req))
        except BadRequest as e:
            self.close_connection = True  # an unread body must not be taken for the next request
            self.send_error_json(e.code, str(e))
        except Exception as e:  # report, keep serving
            self.send_error_json(500, f"{type(e).__name__}: {e}")

    def discard(self, length: int) -> None:
        """Read and drop up to 64 MiB of a refused body in small pieces (bounded memory): a
        client still sending when the socket closes would see a reset instead of the 413."""
        left = min(length, 64 * 2**20)
        self.connection.settimeout(1.0)  # a declared body that never comes holds nothing for long
        try:
            while left > 0:
                piece = self.rfile.read(min(left, 2**16))
                if not piece:
                    break
                left -= len(piece)
        except OSError:  # timed out or closed: answer anyway
            pass

    def read_body(self) -> object:
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw)
        except (TypeError, ValueError):
            raise BadRequest(f"a Content-Length header is required (got {raw!r})", code=411) from None
        if length < 0:
            raise BadRequest(f"Content-Length must be >= 0, got {length}")
        if length > self.server.max_body:
            self.discard(length)
            raise BadRequest(f"request body of {length} bytes is over this server's limit of "
                             f"{self.server.max_body} bytes", code=413)
        try:
            return json.loads(self.rfile.read(length))
        except ValueError as e:
            raise BadRequest(f"invalid JSON: {e}") from None

    def complete(self, req: dict) -> dict:
        if not isinstance(req, dict):
            raise BadRequest("the body must be a JSON object")
        if req.get("model") not in (None, self.server.model_name):
            raise BadRequest(f"the model {req.get('model')!r} does not exist; this server has "
                             f"{self.server.model_name!r}", code=404)
        prompt = req.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not prompts or not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise BadRequest("prompt must be a non-empty string or list of strings (token ids are not supported)")
        if len(prompts) > self.server.max_prompts:
            raise BadRequest(f"{len(prompts)} prompts in one request; this server takes at most "
                             f"{self.server.max_prompts} (max_prompts): split them", code=413)
        if req.get("n", 1) != 1 or req.get("best_of", 1) not in (None, 1):
            raise BadRequest("only n=1 is supported: send one request per sample, each with its own seed")
        if req.get("stream") or req.get("echo") or req.get("logprobs"):
            raise BadRequest("stream, echo and logprobs are not supported")
        stop = req.get("stop")
        stop = (stop,) if isinstance(stop, str) else stop or ()
        if not isinstance(stop, list | tuple) or not all(isinstance(s, str) and s for s in stop):
            raise BadRequest(f"'stop' must be a non-empty string or a list of them, got {req.get('stop')!r}")
        params = SamplingParams(temperature=_number(req, "temperature", 1.0), top_p=_number(req, "top_p", 1.0),
                                max_tokens=_integer(req, "max_tokens", 16), stop=tuple(stop))
        try:
            params.validate()
        except (TypeError, ValueError) as e:
            raise BadRequest(str(e)) from None
        seed = _integer(req, "seed", None)
        seed = random.getrandbits(63) if seed is None else seed
        keep_stop = bool(req.get("include_stop_str_in_output", False))
        tok = getattr(self.server.policy, "tokenizer", None)
        gens, prompt_tokens, step = [], 0, self.server.slice_prompts
        for i in range(0, len(prompts), step):
            part = prompts[i:i + step]
            with self.server.turns.turn():
                try:
                    gens += self.server.policy.generate(part, params, [seed] * len(part))
                except ValueError as e:  # e.g. a prompt longer than the model's context
                    raise BadRequest(str(e)) from None
                prompt_tokens += sum(len(tok(p, add_special_tokens=False)["input_ids"]) for p in part) if tok else 0
        choices = []
        for i, g in enumerate(gens):
            text, matched = g.text, None
            if g.finish_reason == "stop":
                matched = next(s for s in stop if text.endswith(s))
                if not keep_stop:
                    text = text[: len(text) - len(matched)]
            choices.append({"index": i, "text": text, "logprobs": None,
                            # OpenAI semantics: "stop" covers stop strings and EOS; vLLM's stop_reason
                            # tells them apart (the matched string, or None for EOS).
                            "finish_reason": "length" if g.finish_reason == "length" else "stop",
                            "stop_reason": matched})
        completion_tokens = sum(g.num_tokens for g in gens)
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": self.server.model_name, "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}


def _number(req: dict, name: str, default: float) -> float:
    """A finite JSON number field (JSON's NaN and Infinity literals are refused)."""
    v = req.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise BadRequest(f"{name!r} must be a finite number, got {v!r}")
    return float(v)


def _integer(req: dict, name: str, default: int | None) -> int | None:
    v = req.get(name, default)
    if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
        raise BadRequest(f"{name!r} must be an integer, got {v!r}")
    return v


def make_server(policy: Policy, host: str = "127.0.0.1", port: int = 0, model_name: str | None = None,
                handler=None, verbose: bool = False, **limits) -> CompletionServer:
    """A server bound to (host, port) (port 0: a free one; see ``server.base_url``). Run it with
    ``serve_forever()``, in a thread if needed; ``shutdown()`` stops it. ``limits``: max_body,
    max_prompts, slice_prompts, timeout_s (CompletionServer's)."""
    return CompletionServer((host, port), policy, model_name=model_name, handler=handler, verbose=verbose, **limits)


def main(argv=None) -> None:
    from tts_utils.models.policy import load_policy

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="registry name or local model directory")
    ap.add_argument("--family", help="prompt family, for a local directory")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--served-model-name", help="the name clients send (default: the model argument)")
    ap.add_argument("--device")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-body", type=int, default=MAX_BODY, help="largest request body in bytes")
    ap.add_argument("--max-prompts", type=int, default=MAX_PROMPTS, help="most prompts in one request")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds a connection may stay silent")
    args = ap.parse_args(argv)
    policy = load_policy(args.model, family=args.family, device=args.device, batch_size=args.batch_size)
    server = make_server(policy, args.host, args.port, model_name=args.served_model_name or args.model, verbose=True,
                         max_body=args.max_body, max_prompts=args.max_prompts, timeout_s=args.timeout)
    print(f"serving {args.model} at {server.base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
