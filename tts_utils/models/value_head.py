"""A Qwen2 decoder with a scalar value head: the architecture of the Skywork-o1-Open PRMs.

Skywork's inference code (github.com/SkyworkAI/skywork-o1-prm-inference, ``prm_model.py``, also
copied into OpenR) wraps ``AutoModelForCausalLM`` and adds ``v_head = ValueHead(config)`` whose
only weights are ``summary = nn.Linear(hidden_size, 1)`` (with bias), applied to the last hidden
state at every position; ``sigmoid`` of it is the step reward. Its checkpoints therefore hold the
usual Qwen2 keys (``model.*``, ``lm_head.weight``) plus ``v_head.summary.weight`` and
``v_head.summary.bias``.

This module keeps exactly those parameter names, so:

* tiny-world value-head PRMs are saved and loaded with ``save_pretrained`` / ``from_pretrained``
  (and ``AutoModel.from_pretrained`` once this module is imported: the config class is
  registered under its own ``model_type``);
* the real checkpoint loads with ``Qwen2ValueHeadModel.from_pretrained("Skywork/...")``: its
  ``config.json`` says ``model_type: qwen2`` (transformers only warns about the type mismatch),
  its ``model.*`` and ``v_head.*`` weights match our names, and ``lm_head.weight`` is dropped
  (a value head never needs the LM head). ``load_value_head_model`` checks that the value head
  really came from the checkpoint, since ``from_pretrained`` would otherwise initialise a missing
  head at random without complaint.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, Qwen2Config
from transformers.modeling_outputs import ModelOutput
from transformers.models.qwen2.modeling_qwen2 import Qwen2Model, Qwen2PreTrainedModel


class Qwen2ValueHeadConfig(Qwen2Config):
    model_type = "qwen2_value_head"


@dataclass
class ValueHeadOutput(ModelOutput):
    logits: torch.FloatTensor | None = None  # [batch, seq]: the value head before the sigmoid


class ValueHead(nn.Module):
    """Skywork's ``ValueHead`` at inference: one Linear(hidden, 1). (Its dropout, used only in
    training, has no weights and is left out.)"""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.summary = nn.Linear(hidden_size, 1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # Like Skywork's head: run it in the head's own dtype (fp32 if it was kept in fp32).
        return self.summary(hidden_states.to(self.summary.weight.dtype)).squeeze(-1)


class Qwen2ValueHeadModel(Qwen2PreTrainedModel):
    config_class = Qwen2ValueHeadConfig
    # Real Skywork checkpoints carry an LM head that a value model does not use.
    _keys_to_ignore_on_load_unexpected = [r"^lm_head\."]

    def __init__(self, config: Qwen2Config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.v_head = ValueHead(config.hidden_size)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None,
                **kwargs) -> ValueHeadOutput:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            inputs_embeds=inputs_embeds, **kwargs).last_hidden_state
        return ValueHeadOutput(logits=self.v_head(hidden))


def load_value_head_model(path: str, **kwargs) -> Qwen2ValueHeadModel:
    """``from_pretrained`` that refuses a checkpoint without value-head weights (which would
    otherwise be initialised at random silently)."""
    model, info = Qwen2ValueHeadModel.from_pretrained(path, output_loading_info=True, **kwargs)
    missing = [k for k in info["missing_keys"] if k.startswith("v_head.") or k.startswith("model.")]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks value-head model weights {sorted(missing)[:5]}; "
                         "is it a Skywork-style PRM (keys v_head.summary.weight/bias)?")
    return model


AutoConfig.register(Qwen2ValueHeadConfig.model_type, Qwen2ValueHeadConfig, exist_ok=True)
AutoModel.register(Qwen2ValueHeadConfig, Qwen2ValueHeadModel, exist_ok=True)

__all__ = ["Qwen2ValueHeadConfig", "Qwen2ValueHeadModel", "ValueHead", "ValueHeadOutput", "load_value_head_model"]
