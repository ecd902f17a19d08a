"""The tiny world's character-level tokenizer, built offline and wrapped as PreTrainedTokenizerFast.

Every printable ASCII character and "\\n" is one token; the special tokens of every format the
project reads are single tokens: bos/eos/pad/unk, the tiny chat tokens, the Llama-3 header tokens
(RLHFlow), the Qwen chat tokens and ``<extra_0>`` (Qwen PRM), and ``ки`` (Math-Shepherd's step tag,
a normal added token as in the real tokenizer). No token is added to a text automatically (chat
templates write bos where their format has it), except by the Math-Shepherd tokenizer, which
prepends BOS like Mistral's.
"""

from __future__ import annotations

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
USER, ASSISTANT, SYSTEM, END = "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"
LLAMA3 = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
QWEN = ["<|im_start|>", "<|im_end|>", "<extra_0>"]
MS_TAG = "ки"
SPECIALS = [PAD, BOS, EOS, UNK, USER, ASSISTANT, SYSTEM, END, *LLAMA3, *QWEN]
CHARS = ["\n"] + [chr(c) for c in range(32, 127)]
VOCAB_SIZE = 128  # padded (embedding sizes a multiple of 8)

QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."

# The tiny policies' template: no system prompt needed, content written verbatim (no trim), so
# continuing a partial assistant message keeps its trailing "\n\n".
TINY_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|system|>{{ message['content'] }}<|end|>"
    "{% elif message['role'] == 'user' %}<|user|>{{ message['content'] }}<|end|>"
    "{% else %}<|assistant|>{{ message['content'] }}<|end|>{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# Llama-3.1-style (RLHFlow PRMs), shaped like Meta's: BOS, an always-present system turn with the
# dates, every message's content trimmed, <|eot_id|> after each turn.
LLAMA31_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# Qwen2.5-style (Qwen PRM; no tools): default system turn, <|im_start|>role\n...<|im_end|>\n.
QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

TEMPLATES = {"tiny": TINY_TEMPLATE, "rlhflow": LLAMA31_TEMPLATE, "qwen-prm": QWEN25_TEMPLATE,
             "math-shepherd": None, "skywork": None}


def _vocab() -> dict[str, int]:
    toks = SPECIALS + [MS_TAG] + CHARS
    assert len(toks) <= VOCAB_SIZE
    return {t: i for i, t in enumerate(toks)}


def build_tokenizer(kind: str = "tiny") -> PreTrainedTokenizerFast:
    """The tokenizer for a model of ``kind``: "tiny" (policies) or a PRM format. Same vocabulary
    for all; they differ in chat template and in which tokens are bos/eos (as the real ones do)."""
    tok = Tokenizer(models.WordLevel(vocab=_vocab(), unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    tok.add_tokens([AddedToken(MS_TAG, special=False, normalized=False)])
    bos, eos = BOS, END
    if kind == "rlhflow":
        bos, eos = "<|begin_of_text|>", "<|eot_id|>"
    elif kind in ("qwen-prm", "skywork"):
        bos, eos = None, "<|im_end|>"
    elif kind == "math-shepherd":  # like Mistral's tokenizer: encode() starts with BOS
        bos, eos = BOS, EOS
        tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A $B",
                                                           special_tokens=[(BOS, _vocab()[BOS])])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=PAD, unk_token=UNK,
        additional_special_tokens=[t for t in SPECIALS if t not in (PAD, BOS, EOS, UNK, bos, eos)],
        model_max_length=2048, padding_side="left", clean_up_tokenization_spaces=False,
    )
    if kind == "skywork":  # Skywork's Qwen tokenizer has no bos; its PRM code writes one anyway
        fast.bos_token = BOS
    template = TEMPLATES.get(kind)
    if template is not None:
        fast.chat_template = template
    return fast


def ids(tokenizer, token: str) -> int:
    return tokenizer.convert_tokens_to_ids(token)
