"""Models: the registry of every policy and PRM, generation, and PRM scoring.

Owns the model registry (``catalog``: the paper's models and the tiny world's manifest, devices
and tokenizers), the seeded decoder (``decoder``), the policy backends (``policy``: transformers,
vLLM, any OpenAI-compatible server; ``serve``: the local server), and PRM scoring in each real
model's input format (``prm_base``: the shared scorer; ``prm``: one class per format and
``load_prm``), with prefix sharing (``prm_prefix``), the value head (``value_head``) and grouped
attention (``grouped_attention``).

May import ``problems`` and the top-level utilities; never ``search``, ``collect``, ``analysis``
or ``study``.
"""
