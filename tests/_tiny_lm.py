"""Offline tokenizers and tiny random causal LMs for the policy tests (nothing is downloaded).

The tokenizer is character-level: every printable ASCII character and "\\n" is one token, so a text
of k characters is k tokens. A few multi-character tokens that the tokenizer never produces from
text but the model can emit (``MULTI``) exercise stops inside a token. The chat template is the
shape of Llama-3's (header tokens, <|eot_id|>), small enough to read.
"""

from __future__ import annotations

import string

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL = ["<pad>", "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
           "<|eot_id|>", "<|im_start|>", "<|im_end|>"]
# Emittable by the model, never produced by tokenizing text (the pre-tokenizer splits characters).
MULTI = ["7\n\n8", ".\n"]
CHARS = list(string.printable[:95]) + ["\n"]

CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def make_tokenizer(chat_template: str = CHAT_TEMPLATE, eos: str = "<|eot_id|>",
                   bos: str | None = "<|begin_of_text|>") -> PreTrainedTokenizerFast:
    vocab = {t: i for i, t in enumerate(SPECIAL + list(dict.fromkeys(CHARS)) + MULTI)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()  # concatenate tokens, no spaces between them
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token="<pad>",
                                   additional_special_tokens=[t for t in SPECIAL if t not in (bos, eos, "<pad>")])
    fast.chat_template = chat_template
    return fast


def make_model(tokenizer, bias: dict[str, float] | None = None, seed: int = 0, max_positions: int = 512,
               scale: float = 1.0) -> LlamaForCausalLM:
    """A random 2-layer Llama (hidden 32). ``bias`` adds a constant to the logits of some tokens
    through an lm_head bias, to make an outcome likely (a random model rarely emits "\\n\\n" or EOS
    on its own); ``scale`` multiplies the head's weights (small: near-uniform, high-entropy samples)."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
                         tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    head = torch.nn.Linear(32, len(tokenizer), bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight * scale)
        head.bias.zero_()
        for text, b in (bias or {}).items():
            head.bias[tokenizer.convert_tokens_to_ids(text)] = b
    model.lm_head = head
    return model.eval()
