"""Attention on grouped key/value heads for the PRMs on CPU.

transformers' "sdpa" attention passes grouped-query heads to torch's kernel only without a mask
(a CUDA kernel's constraint); with a mask (padding, or a search's prefix-shared batches) it first
repeats every key/value head for each query head it serves, a copy of the whole past per layer
and call. On CPU torch's kernel takes the grouped heads and the mask together (``enable_gqa``),
so ``use_grouped_attention`` switches a model to that: the same attention, without the copy
(with tiny-prm-qwen, whose 4 query heads share 2 key/value heads, beam search and DVTS took 6-10%
less time, with the same reward bits). It is for CPU only: on a GPU, a mask with grouped heads
sends torch to its slow math kernel, so a model moved to a GPU after the switch runs
transformers' own sdpa there.
"""

from __future__ import annotations

import functools

NAME = "tts_grouped_sdpa"


def _grouped_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """transformers' sdpa attention for CPU, with ``enable_gqa`` instead of repeated key/value heads."""
    import torch

    if query.device.type != "cpu":  # a model moved off the CPU after the switch
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    if kwargs.get("position_bias") is not None or kwargs.get("softcap") is not None:
        raise NotImplementedError(f"{NAME}: position_bias and softcap are not supported")
    is_causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    # as transformers decides: a causal flag only for a prompt without a mask
    is_causal = query.shape[2] > 1 and attention_mask is None and is_causal
    if is_causal and key.shape[2] > query.shape[2]:  # the kernel's causal mask is aligned top-left
        key, value = key[:, :, :query.shape[2]], value[:, :, :query.shape[2]]
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, is_causal=is_causal,
        enable_gqa=key.shape[1] != query.shape[1])
    return out.transpose(1, 2).contiguous(), None


@functools.cache
def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, _grouped_sdpa)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # the same masks as "sdpa"


def use_grouped_attention(model) -> bool:
    """Switch a CPU model that uses transformers' sdpa attention with grouped key/value heads to
    ``_grouped_sdpa``; True if it was switched. Other models (GPU, remote code, other attention
    implementations, one key/value head per query head) are left as they are."""
    config = getattr(model, "config", None)
    text = config.get_text_config() if config is not None and hasattr(config, "get_text_config") else config
    heads = getattr(text, "num_attention_heads", None)
    kv = getattr(text, "num_key_value_heads", None) or heads
    if (getattr(config, "_attn_implementation", None) != "sdpa" or not heads or kv == heads
            or getattr(model, "device", None) is None or model.device.type != "cpu"
            or not hasattr(model, "set_attn_implementation")):
        return False
    _register()
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME
