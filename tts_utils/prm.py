"""PRM interface: per-step rewards for (question, steps) pairs, every step in one forward pass.

One class per real PRM input format (docs/DESIGN.md, "PRM formats"), each reproducing its model's own
inference code (sources named in each class):

* ``MathShepherdPRM``  question + " " + steps joined by " ки\\n"; P(+) of softmax(+, -) at each ки.
* ``RLHFlowPRM``       Llama-3.1 chat, one user turn per step, assistant "+"; P(+) at the position
                       that predicts each assistant "+".
* ``SkyworkPRM``       BOS (<|im_start|> for Qwen) + question + "\\n", each step + "\\n"; sigmoid(value
                       head) at each "\\n".
* ``QwenPRM``          Qwen chat, assistant = steps each followed by <extra_0>; P(class 1) there.

Every class exposes ``encode(question, steps) -> (input_ids, read_positions)``, the exact input
that ``score`` feeds the model and the positions it reads, so tiny-world training uses the same
inputs. ``score`` batches solutions with right padding: with a causal model the outputs at the
read positions (all before the padding) cannot see the padding, so a solution's scores do not
depend on what it is batched with (beyond float rounding).

Conventions shared by all formats:
* One reward per given step, always (an empty step is scored too, so rewards align with steps).
  A solution with zero steps gets empty rewards and ``num_tokens == 0``; the model is not run.
* Steps are stripped of surrounding whitespace (the "\\n\\n" separators), as every real inference
  script does.
* A sequence longer than the model's ``max_position_embeddings`` raises ValueError: never
  truncated.
* ``num_tokens`` is the solution's own (unpadded) input length: the FLOPs model's count, whatever
  actually ran. Within one ``score`` call, identical inputs run once, and siblings (solutions that
  differ only in their last step: a search's children) run their common input prefix once and
  their last steps on its KV cache (``share_prefixes``, tts_utils.prm_prefix; exact to rounding,
  1e-5 tested, where the format's head is known). The solutions of the last call stay cached, so
  the next call (a search's next round) runs only its children's new tokens.
  ``tokens_processed`` counts the tokens that actually ran.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from tts_utils.grouped_attention import use_grouped_attention
from tts_utils.prm_prefix import Support, score_families, sharing_support, split_families
from tts_utils.prompts import QWEN_MATH_SYSTEM_PROMPT


@dataclass(frozen=True)
class StepScores:
    rewards: list[float]   # one reward in [0, 1] per step, in order
    num_tokens: int        # tokens the PRM processed for this solution (for FLOPs)


class PRM(ABC):
    name: str

    @abstractmethod
    def score(self, questions: list[str], solutions: list[list[str]]) -> list[StepScores]:
        """Score every step of every solution. ``solutions[i]`` is the list of steps of a solution
        to ``questions[i]`` (as generated, usually each ending in "\\n\\n")."""


# --------------------------------------------------------------------------------------------
# Shared machinery
# --------------------------------------------------------------------------------------------

def _token_id(tokenizer, text: str, fmt: str) -> int:
    """The id of ``text`` as the real inference scripts take it: the last token of its encoding
    (sentencepiece tokenizers may put a lone "▁" first). The token must decode back to ``text``,
    or the tokenizer does not carry the format's special token."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    decoded = tokenizer.decode(ids[-1:]) if ids else ""
    # A sentencepiece token may decode with its leading space ("▁+"); whitespace must match as is.
    if not (decoded.strip() == text if text.strip() else decoded == text):
        pieces = [tokenizer.decode([i]) for i in ids]
        raise ValueError(f"{fmt} PRM: the tokenizer must have {text!r} as a single token "
                         f"(it encodes it as {pieces}); add it to the tokenizer")
    return ids[-1]


def _require_chat_template(tokenizer, fmt: str) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{fmt} PRM: the tokenizer has no chat template; this format is a chat")


def _clean(step: str) -> str:
    if not isinstance(step, str):
        raise TypeError(f"a step must be a string, got {type(step).__name__}")
    return step.strip()


class TransformersPRM(PRM):
    """A PRM run with ``transformers``: ``encode`` one solution, batch, one forward, read positions.

    Subclasses define ``encode`` and ``_rewards_at`` (the rewards at given (row, column) positions
    of a padded batch) and ``_load_model`` (how ``load_prm`` loads a checkpoint of that format).
    """

    prm_format: str = ""
    # Siblings' shared input prefix runs once (see score); off: one full forward per solution.
    share_prefixes: bool = True
    min_shared_prefix: int = 16  # shorter shared prefixes are not worth the extra forward

    def __init__(self, model, tokenizer, *, name: str | None = None, batch_size: int = 8):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()  # no dropout
        use_grouped_attention(model)  # on CPU: no copy of every key/value head per query head
        self.tokenizer = tokenizer
        self.name = name or getattr(model.config, "name_or_path", "") or type(self).__name__
        self.batch_size = batch_size
        self.max_length: int | None = getattr(model.config, "max_position_embeddings", None)
        # Right padding: the pad id only fills positions after every read position.
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = pad if pad is not None else 0
        self.tokens_processed = 0  # unpadded tokens run through the model so far (duplicates run once)
        self._support: Support | None | bool = False  # False: not probed yet (see _sharing_support)
        self._pieces: dict[str, tuple[int, ...]] = {}  # _encode_piece's memo
        self._kept: dict = {}  # (question, steps) -> prm_prefix.Kept, from the previous score call

    def _encode_piece(self, text: str) -> list[int]:
        """``tokenizer.encode(text, add_special_tokens=False)``, memoized: formats that tokenize step
        by step meet the same pieces again and again, as a search re-scores every path's earlier
        steps each round (tokenizing was a tenth of DVTS's wall time)."""
        ids = self._pieces.get(text)
        if ids is None:
            if len(self._pieces) >= 200_000:  # bound the memory of a long run
                self._pieces.clear()
            ids = self._pieces[text] = tuple(self.tokenizer.encode(text, add_special_tokens=False))
        return list(ids)

    @abstractmethod
    def encode(self, question: str, steps: list[str]) -> tuple[list[int], list[int]]:
        """The token ids fed to the model for one solution, and the positions whose output gives
        each step's reward (one per step, increasing)."""

    @abstractmethod
    def _rewards_at(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, rows: torch.Tensor,
                    cols: torch.Tensor) -> torch.Tensor:
        """Rewards (float, in [0, 1]) at positions (rows[k], cols[k]) of the batch."""

    @classmethod
    @abstractmethod
    def _load_model(cls, source: str, **kwargs):
        """Load a checkpoint of this format (hub id or local directory)."""

    def score(self, questions: list[str], solutions: list[list[str]]) -> list[StepScores]:
        if len(questions) != len(solutions):
            raise ValueError(f"{len(questions)} questions but {len(solutions)} solutions")
        results: list[StepScores | None] = [None] * len(questions)
        todo = []  # (index, input_ids, read_positions)
        parent: dict[int, tuple] = {}  # index -> (question, all steps but the last): siblings share it
        for i, (question, steps) in enumerate(zip(questions, solutions, strict=True)):
            if isinstance(steps, str):
                raise TypeError(f"solution {i}: expected a list of steps, got a string")
            if len(steps) == 0:
                results[i] = StepScores(rewards=[], num_tokens=0)
                continue
            ids, positions = self.encode(question, list(steps))
            if self.max_length is not None and len(ids) > self.max_length:
                raise ValueError(f"{self.name}: solution {i} is {len(ids)} tokens, more than the model's "
                                 f"max_position_embeddings ({self.max_length}); not truncating")
            todo.append((i, ids, positions))
            parent[i] = (question, tuple(_clean(s) for s in steps[:-1]))
        # Identical inputs (the same sample drawn twice: common on easy problems) run once; the
        # copies get the same scores and still count their own tokens (num_tokens is the FLOPs
        # model's count; ``tokens_processed`` counts what actually ran).
        first: dict[tuple[int, ...], int] = {}
        copies: list[tuple[int, int]] = []  # (index, index of the identical input that runs)
        unique = []
        for i, ids, positions in todo:
            key = (*ids, -1, *positions)
            if key in first:
                copies.append((i, first[key]))
            else:
                first[key] = i
                unique.append((i, ids, positions))
        # Siblings (the same question and steps but the last, as a search's children) run their
        # common input prefix once, and their own last steps on its KV cache. (Sharing only the
        # question, as Best-of-N's samples could, measured slower than running them whole.)
        # A family whose parent was scored in the previous call (a search's next round) runs only
        # its members' new tokens, on the parent's kept cache.
        support = self._sharing_support() if self.share_prefixes and unique else None
        kept: dict = {}
        if support is not None:
            shared, unique = split_families(unique, parent, self.min_shared_prefix, support.max_len, self._kept)
            if shared:
                self.tokens_processed += sum((prefix if old is None else 0) +
                                             sum(len(ids) - prefix for _, ids, _ in family)
                                             for family, prefix, old in shared)
                lengths = {i: len(ids) for family, _, _ in shared for i, ids, _ in family}
                rewards, by_index = score_families(self.model, self._head, shared, self.batch_size, self.pad_id,
                                                   support)
                for i, r in rewards.items():
                    results[i] = StepScores(rewards=r, num_tokens=lengths[i])
                kept = {(parent[i][0], parent[i][1] + (_clean(solutions[i][-1]),)): k for i, k in by_index.items()}
        self._kept = kept  # only the last call's: a search's next round scores its children
        # Similar lengths together: less padding. The order cannot change any score (see module doc).
        unique.sort(key=lambda t: len(t[1]))
        for start in range(0, len(unique), self.batch_size):
            chunk = unique[start:start + self.batch_size]
            for (i, ids, _), rewards in zip(chunk, self._score_batch(chunk), strict=True):
                results[i] = StepScores(rewards=rewards, num_tokens=len(ids))
            self.tokens_processed += sum(len(ids) for _, ids, _ in chunk)
        for i, j in copies:
            results[i] = StepScores(rewards=list(results[j].rewards), num_tokens=results[j].num_tokens)
        return results  # type: ignore[return-value]

    def _sharing_support(self) -> Support | None:
        if self._support is False:
            self._support = sharing_support(self.model, self._head)
        return self._support

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        """Rewards from the backbone's last hidden states at read positions ([k, hidden] -> [k]);
        formats whose head is not known raise NotImplementedError (no prefix sharing then)."""
        raise NotImplementedError

    @torch.inference_mode()
    def _score_batch(self, chunk) -> list[list[float]]:
        width = max(len(ids) for _, ids, _ in chunk)
        input_ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
        rows, cols = [], []
        for b, (_, ids, positions) in enumerate(chunk):
            input_ids[b, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            rows += [b] * len(positions)
            cols += positions
        device = self.model.device
        # No attention mask: the rows are padded on the right, so under causal attention no
        # position that is read ever sees a pad, and without a mask the attention kernel runs its
        # causal blocks only (the same rewards, 2-30% faster on the tiny PRMs).
        flat = self._rewards_at(input_ids.to(device), None, torch.tensor(rows, device=device),
                                torch.tensor(cols, device=device)).float().cpu().tolist()
        out, k = [], 0
        for _, _, positions in chunk:
            out.append(flat[k:k + len(positions)])
            k += len(positions)
        return out


class _PlusMinusPRM(TransformersPRM):
    """A causal LM read as P("+") of softmax over the logits of "+" and "-" at each read position."""

    def __init__(self, model, tokenizer, **kw):
        super().__init__(model, tokenizer, **kw)
        # Both real scripts take these ids as the last token of encode("+") / encode("-").
        self.good_id = _token_id(tokenizer, "+", self.prm_format)
        self.bad_id = _token_id(tokenizer, "-", self.prm_format)

    def _rewards_at(self, input_ids, attention_mask, rows, cols):
        # Only the read positions go through the LM head: full logits would be [batch, length, vocab]
        # (128k vocab for Llama 3). Same numbers as model(...).logits at those positions.
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # (.to: with device_map="auto" the last layer and the head may sit on another GPU)
        return self._head(hidden[rows.to(hidden.device), cols.to(hidden.device)])

    def _head(self, hidden):
        head = self.model.get_output_embeddings()
        logits = head(hidden.to(head.weight.device))
        pair = logits[:, [self.good_id, self.bad_id]].float()
        return pair.softmax(dim=-1)[:, 0]

    @classmethod
    def _load_model(cls, source, **kwargs):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(source, **kwargs)


# --------------------------------------------------------------------------------------------
# The four formats
# --------------------------------------------------------------------------------------------

class MathShepherdPRM(_PlusMinusPRM):
    """peiyi9979/math-shepherd-mistral-7b-prm (MistralForCausalLM).

    Input, as in the model card and OpenR's ``_math_shepherd_infer_fn``:
    ``question + " " + "step1 ки\\nstep2 ки\\n...stepN ки"``, tokenized whole (with the tokenizer's
    BOS); the reward of a step is softmax(logit(+), logit(-))[+] at the ки token itself. The ids
    follow the real code: tag = last token of encode("ки") (12902 in Mistral's vocabulary),
    good/bad = encode("+ -")[1:] there ([648, 387]), i.e. the last token of encode("+")/("-").
    (The model card ends the last step with " ки" and no newline; a trailing "\\n" could not
    change any score, the model being causal.)

    The whole string is tokenized at once, like the real code, and the tag positions are found by
    id; ``encode`` checks there is exactly one per step (a step containing "ки", or a tokenizer
    that merges the tag with its neighbours, is an error rather than a misaligned score).
    """

    prm_format = "math-shepherd"
    STEP_TAG = "ки"

    def __init__(self, model, tokenizer, **kw):
        super().__init__(model, tokenizer, **kw)
        self.tag_id = _token_id(tokenizer, self.STEP_TAG, self.prm_format)

    def text(self, question: str, steps: list[str]) -> str:
        return question + " " + f" {self.STEP_TAG}\n".join(_clean(s) for s in steps) + f" {self.STEP_TAG}"

    def encode(self, question, steps):
        ids = self.tokenizer.encode(self.text(question, steps))  # with BOS, as the model card does
        positions = [i for i, t in enumerate(ids) if t == self.tag_id]
        if len(positions) != len(steps):
            raise ValueError(f"math-shepherd PRM: found {len(positions)} step tags {self.STEP_TAG!r} for "
                             f"{len(steps)} steps (does the question or a step contain the tag?)")
        return ids, positions


class RLHFlowPRM(_PlusMinusPRM):
    """RLHFlow/Llama3.1-8B-PRM-{Mistral,Deepseek}-Data (LlamaForCausalLM).

    Input, as in RLHFlow's ``math-rm/prm_evaluate.py`` and the paper's ``_rlhflow_*_infer_fn``:
    the tokenizer's chat template over user/assistant turns, user turn k = step k (turn 1 =
    question + " " + step 1), every assistant turn "+". The reward of step k is
    softmax(logit(+), logit(-))[+] at the position just before its assistant "+", i.e. the one
    that predicts it (RLHFlow reads position -3 for the last turn: "\\n\\n" before "+<|eot_id|>").

    All turns go in one pass. To know exactly where each assistant "+" is, the template is
    rendered with a marker as every assistant message, the text is split at the markers, each
    piece tokenized alone and the "+" id put between them. The paper's code does the same with
    the special token <|reserved_special_token_0|> as the marker (special tokens split the text
    the same way). With Llama 3's tokenizer this equals tokenizing the text with "+" in place,
    since its pre-tokenizer never merges "\\n\\n", "+" and <|eot_id|>.
    """

    prm_format = "rlhflow"
    _MARK = "\u27e6prm-assistant\u27e7"  # never reaches the tokenizer

    def __init__(self, model, tokenizer, **kw):
        super().__init__(model, tokenizer, **kw)
        _require_chat_template(tokenizer, self.prm_format)

    def encode(self, question, steps, labels: list[bool] | None = None):
        """``labels`` (training only): put "+" (True) or "-" (False) as each assistant turn, the
        format RLHFlow trains on; inference puts "+" everywhere, as the real scripts do."""
        if labels is not None and len(labels) != len(steps):
            raise ValueError(f"{len(labels)} labels for {len(steps)} steps")
        conversation = []
        for k, step in enumerate(steps):
            text = _clean(step)
            if self._MARK in text or (k == 0 and self._MARK in question):
                raise ValueError("rlhflow PRM: the text contains the internal marker")
            conversation.append({"role": "user", "content": f"{question} {text}" if k == 0 else text})
            conversation.append({"role": "assistant", "content": self._MARK})
        rendered = self.tokenizer.apply_chat_template(conversation, tokenize=False)
        pieces = rendered.split(self._MARK)
        if len(pieces) != len(steps) + 1:
            raise ValueError(f"rlhflow PRM: the chat template kept {len(pieces) - 1} of {len(steps)} assistant turns")
        ids: list[int] = []
        positions: list[int] = []
        for k, piece in enumerate(pieces):
            ids += self._encode_piece(piece)
            if k < len(steps):
                good = labels is None or labels[k]
                ids.append(self.good_id if good else self.bad_id)
                positions.append(len(ids) - 2)  # the position that predicts the label token
        return ids, positions


class SkyworkPRM(TransformersPRM):
    """Skywork/Skywork-o1-Open-PRM-Qwen-2.5-{1.5B,7B} (Qwen2 + value head, ``value_head.py``).

    Input, as in Skywork's ``prepare_input`` (skywork-o1-prm-inference, model_utils/io_utils.py,
    copied in OpenR) and the paper's ``_skywork_infer_fn``: ``encode(bos_token + question + "\\n")``,
    then for each step its own encoding followed by the id of "\\n" (the last token of
    encode("\\n")). Steps are tokenized one by one, as in both real scripts, so the "\\n" positions
    are exact. Inner newlines of a step become spaces (Skywork splits steps on "\\n"), and steps
    are stripped (paper code). The reward is sigmoid(value head) at each step's "\\n".

    The BOS: Skywork's code prepends ``tokenizer.bos_token`` as text. Qwen2.5's own tokenizer has
    none (bos_token null), but the one Skywork ships with its PRMs declares ``"bos_token":
    "<|im_start|>"`` (special_tokens_map.json of Skywork-o1-Open-PRM-Qwen-2.5-1.5B/7B on the hub),
    so every real input starts with <|im_start|> (id 151644). A tokenizer without a bos_token
    (plain Qwen2.5) gets that same token here, if it is one of its tokens.
    """

    prm_format = "skywork"
    STEP_TAG = "\n"
    QWEN_BOS = "<|im_start|>"  # the bos_token of Skywork's shipped tokenizer (see above)

    def __init__(self, model, tokenizer, **kw):
        super().__init__(model, tokenizer, **kw)
        self.bos = tokenizer.bos_token
        if self.bos is None:
            if tokenizer.convert_tokens_to_ids(self.QWEN_BOS) in (None, tokenizer.unk_token_id):
                raise ValueError(f"skywork PRM: the tokenizer has no bos_token and no {self.QWEN_BOS} token; "
                                 "the format starts with one")
            self.bos = self.QWEN_BOS
        self.step_tag_id = _token_id(tokenizer, self.STEP_TAG, self.prm_format)

    def encode(self, question, steps):
        ids = self._encode_piece(self.bos + question + self.STEP_TAG)
        positions = []
        for step in steps:
            ids += self._encode_piece(_clean(step).replace("\n", " ")) + [self.step_tag_id]
            positions.append(len(ids) - 1)
        return ids, positions

    def _rewards_at(self, input_ids, attention_mask, rows, cols):
        values = self.model(input_ids=input_ids, attention_mask=attention_mask).logits  # [batch, length]
        return _sigmoid(values[rows.to(values.device), cols.to(values.device)])

    def _head(self, hidden):
        v_head = getattr(self.model, "v_head", None)
        if v_head is None:
            raise NotImplementedError
        return _sigmoid(v_head(hidden))

    @classmethod
    def _load_model(cls, source, **kwargs):
        from tts_utils.value_head import load_value_head_model

        return load_value_head_model(source, **kwargs)


def _sigmoid(values: torch.Tensor) -> torch.Tensor:
    """sigmoid in float64 when the model runs in it (at least float32). In float32 torch's CPU
    sigmoid gives a vectorized and a scalar result that differ in the last bit, and which one an
    element gets depends on its place in the tensor, so a reward moved with the batch."""
    return torch.sigmoid(values.to(torch.promote_types(values.dtype, torch.float32)))


class QwenPRM(TransformersPRM):
    """Qwen/Qwen2.5-Math-PRM-{7B,72B} (remote-code Qwen2ForProcessRewardModel; the tiny world uses
    Qwen2ForTokenClassification with 2 labels: both give logits [batch, length, 2]).

    Input, as in the model card and the paper's ``_qwen_infer_fn``: the chat template over system
    "Please reason step by step, and put your final answer within \\boxed{}.", user = question,
    assistant = each (stripped) step followed by <extra_0>; the whole text tokenized at once
    (<extra_0> is a special token, so it is never merged). The reward is softmax(logits)[1] at
    each <extra_0> token.
    """

    prm_format = "qwen-prm"
    STEP_TOKEN = "<extra_0>"
    SYSTEM = QWEN_MATH_SYSTEM_PROMPT

    def __init__(self, model, tokenizer, **kw):
        super().__init__(model, tokenizer, **kw)
        _require_chat_template(tokenizer, self.prm_format)
        self.step_id = _token_id(tokenizer, self.STEP_TOKEN, self.prm_format)

    def encode(self, question, steps):
        messages = [
            {"role": "system", "content": self.SYSTEM},
            {"role": "user", "content": question},
            {"role": "assistant", "content": "".join(_clean(s) + self.STEP_TOKEN for s in steps)},
        ]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        positions = [i for i, t in enumerate(ids) if t == self.step_id]
        if len(positions) != len(steps):
            raise ValueError(f"qwen-prm PRM: found {len(positions)} {self.STEP_TOKEN} tokens for {len(steps)} "
                             "steps (does the question or a step contain it?)")
        return ids, positions

    def _rewards_at(self, input_ids, attention_mask, rows, cols):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        logits = out.logits if hasattr(out, "logits") else out[0]
        if logits.shape[-1] != 2:
            raise ValueError(f"qwen-prm PRM: expected a 2-class head, got logits of shape {tuple(logits.shape)}")
        return logits[rows.to(logits.device), cols.to(logits.device)].float().softmax(dim=-1)[:, 1]

    def _head(self, hidden):
        # transformers' *ForTokenClassification (the tiny world): dropout (off at inference) + score.
        # Other architectures (the real remote-code Qwen2ForProcessRewardModel) run unshared.
        from transformers.modeling_layers import GenericForTokenClassification

        if not isinstance(self.model, GenericForTokenClassification):
            raise NotImplementedError
        return self.model.score(hidden.to(self.model.score.weight.dtype)).float().softmax(dim=-1)[:, 1]

    @classmethod
    def _load_model(cls, source, **kwargs):
        from transformers import AutoModel, AutoModelForTokenClassification, PreTrainedConfig

        archs = PreTrainedConfig.get_config_dict(source)[0].get("architectures") or []
        if any("ProcessRewardModel" in a for a in archs):
            # The real checkpoints ship their own modeling code (Qwen2ForProcessRewardModel).
            return AutoModel.from_pretrained(source, trust_remote_code=True, **kwargs)
        return AutoModelForTokenClassification.from_pretrained(source, **kwargs)


PRM_CLASSES: dict[str, type[TransformersPRM]] = {
    cls.prm_format: cls for cls in (MathShepherdPRM, RLHFlowPRM, SkyworkPRM, QwenPRM)
}


def load_prm(name_or_spec, device: str | None = None, dtype: torch.dtype | str | None = None, *,
             prm_format: str | None = None, batch_size: int = 8) -> TransformersPRM:
    """A PRM from the registry: a name, a ``ModelSpec``, or a local directory with ``prm_format=``.

    The class follows the spec's ``prm_format``. ``device`` defaults to the GPU if one is visible,
    else the CPU, as the policy's does. ``dtype`` (a torch dtype or its name, "bfloat16") defaults
    to float64 on CPU and bfloat16 elsewhere. Why float64 on CPU: in float32 a reward changed by
    up to 6e-7 with the batch it was padded into and with the thread count, so the same cached work unit scored differently
    on a resume or another machine, and a near-tie under PRM-Max moved a committed figure. In
    float64 those differences stay far below float32's resolution, and the rewards are returned
    rounded to float32: the same bits for any batch and thread count (tests/test_prm.py checks
    it). It costs 1.3-1.8x the float32 scoring time on the tiny world's PRMs. ``device="auto"`` spreads the model over the visible GPUs (``device_map="auto"``;
    Qwen2.5-Math-PRM-72B in bf16 does not fit one 141 GB GPU).
    """
    from tts_utils.models import ModelSpec, default_device, get_model, load_tokenizer

    if isinstance(name_or_spec, ModelSpec):
        spec = name_or_spec
    else:
        spec = get_model(str(name_or_spec), kind="prm", prm_format=prm_format)
    if spec.kind != "prm":
        raise ValueError(f"{spec.name!r} is a {spec.kind}, not a PRM")
    if spec.prm_format not in PRM_CLASSES:
        raise ValueError(f"{spec.name!r}: unknown prm_format {spec.prm_format!r}; known: {', '.join(PRM_CLASSES)}")
    cls = PRM_CLASSES[spec.prm_format]
    source = str(spec.local_path()) if spec.is_local else spec.source
    device = device or default_device()
    if dtype is None:
        dtype = torch.float64 if str(device) == "cpu" else torch.bfloat16
    elif isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; e.g. bfloat16, float16, float32, float64")
        dtype = getattr(torch, dtype)
    kwargs = {"dtype": dtype}
    if device == "auto":
        kwargs["device_map"] = "auto"
    # Hub checkpoints of the paper (Qwen PRM, Skywork) ship custom code for their tokenizers too.
    tokenizer = load_tokenizer(source, trust_remote_code=spec.world == "paper")
    model = cls._load_model(source, **kwargs)
    if device != "auto":
        model = model.to(device)
    return cls(model, tokenizer, name=spec.name, batch_size=batch_size)


__all__ = ["PRM", "PRM_CLASSES", "MathShepherdPRM", "QwenPRM", "RLHFlowPRM", "SkyworkPRM", "StepScores",
           "TransformersPRM", "load_prm"]
