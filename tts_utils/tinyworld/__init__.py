"""The tiny world: a synthetic arithmetic task with small policies and PRMs the project trains.

Owns the task and its checker (``task``), the tokenizer (``tokenizer``), training the policies
(``train_policy``) and the PRMs (``train_prm``), evaluating them (``evaluate``, ``prm_eval``),
the report notebook 00 draws (``report``) and the staged build (``build``, ``make tinyworld``)
into data/tinyworld/.

May import ``analysis``, ``models``, ``problems`` and the top-level utilities; ``study`` reads
``task`` (the checker) and nothing else of it.
"""
