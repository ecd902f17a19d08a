"""The real PRM input formats, one class each, and ``load_prm`` (docs/DESIGN.md, "PRM formats").

* ``MathShepherdPRM``  question + " " + steps joined by " ки\\n"; P(+) of softmax(+, -) at each ки.
* ``RLHFlowPRM``       Llama-3.1 chat, one user turn per step, assistant "+"; P(+) at the position
                       that predicts each assistant "+".
* ``SkyworkPRM``       BOS (<|im_start|> for Qwen) + question + "\\n", each step + "\\n"; sigmoid(value
                       head) at each "\\n".
* ``QwenPRM``          Qwen chat, assistant = steps each followed by <extra_0>; P(class 1) there.

The batching, prefix sharing and conventions they share live in ``prm_base.TransformersPRM``.
"""

from __future__ import annotations

import torch

from tts_utils.models.prm_base import (
    PRM,
    StepScores,
    TransformersPRM,
    _clean,
    _require_chat_template,
    _token_id,
)
from tts_utils.problems.prompts import QWEN_MATH_SYSTEM_PROMPT


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
        from tts_utils.models.value_head import load_value_head_model

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
    from tts_utils.models.catalog import ModelSpec, default_device, get_model, load_tokenizer

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
