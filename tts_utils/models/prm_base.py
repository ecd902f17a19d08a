"""The PRM scorer every format shares: per-step rewards for (question, steps) pairs, every step in one forward pass.

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
  their last steps on its KV cache (``share_prefixes``, tts_utils.models.prm_prefix; exact to rounding,
  1e-5 tested, where the format's head is known). The solutions of the last call stay cached, so
  the next call (a search's next round) runs only its children's new tokens.
  ``tokens_processed`` counts the tokens that actually ran.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from tts_utils.models.grouped_attention import use_grouped_attention
from tts_utils.models.prm_prefix import Support, score_families, sharing_support, split_families


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
