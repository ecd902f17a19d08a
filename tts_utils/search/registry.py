"""The method registry: one entry per search method, read by search, collect and study.

A method module in ``tts_utils/search/`` ends with ``register(Method(...))``; the package imports
every module in the folder, so a new method is one new file (plus its test). The entry says how
to run the method and what the grid runner needs to know about it:

* ``run(policy, prm, problems, n, seed, config) -> SearchResult`` (``prm`` is None when the
  method uses none);
* ``uses_prm``: collect runs it once per (policy, PRM), or once per policy with ``prm == ""``;
* ``budgets``: "grid" (one result per N of the grid), "one" (a single run at N = 1 whatever the
  grid's N: greedy CoT), or "pass1" (the grid's ``pass1_samples`` at its ``pass1_seed``: the
  difficulty sample set);
* ``n_multiple_of_beam``: N must be a positive multiple of the beam width M (tree searches);
* ``derivable``: the run at the largest N holds the run at every smaller N, so collect runs it
  once and derives the rest (``derive``); otherwise it runs once per N;
* ``group_size(config)``: for a derivable method, how many candidates are produced (and kept or
  dropped) together: the run at N is the first N / group_size groups of the run at N_max.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from tts_utils.search.common import SearchConfig, SearchResult, check_budget

BUDGETS = ("grid", "one", "pass1")


def _one(config: SearchConfig) -> int:
    return 1


@dataclass(frozen=True)
class Method:
    name: str
    run: Callable[..., SearchResult]
    uses_prm: bool
    budgets: str = "grid"
    n_multiple_of_beam: bool = False
    derivable: bool = False
    group_size: Callable[[SearchConfig], int] = _one

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"a method needs a name, got {self.name!r}")
        if self.budgets not in BUDGETS:
            raise ValueError(f"method {self.name!r}: budgets must be one of {BUDGETS}, got {self.budgets!r}")


_REGISTRY: dict[str, Method] = {}


def register(method: Method, replace_existing: bool = False) -> Method:
    """Add a method (a second one of the same name is an error unless ``replace_existing``)."""
    if method.name in _REGISTRY and not replace_existing:
        raise ValueError(f"a method named {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove a method (tests that register a toy method clean up with this)."""
    _REGISTRY.pop(name, None)


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(method_names())}") from None


def method_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def validate_budget(method: str, n: object, config: SearchConfig) -> int:
    """Check that N is a valid budget for ``method`` (ValueError naming the problem)."""
    m = get_method(method)
    return check_budget(n, config.beam_width if m.n_multiple_of_beam else None, method)


def run_method(method: str, policy, prm, problems, n: int, seed: int = 0,
               config: SearchConfig | None = None) -> SearchResult:
    cfg = config or SearchConfig()
    m = get_method(method)
    validate_budget(method, n, cfg)
    if m.uses_prm and prm is None:
        raise ValueError(f"{method} needs a PRM")
    return m.run(policy, prm if m.uses_prm else None, problems, n, seed, cfg)


def run_budgets(method: str, policy, prm, problems, budgets: list[int], seed: int = 0,
                config: SearchConfig | None = None) -> dict[int, SearchResult]:
    """Results at every budget: one run at max(budgets) derived down where the method allows it,
    one run per N otherwise. A method with budgets "one" ignores ``budgets`` (one run, N = 1)."""
    cfg = config or SearchConfig()
    m = get_method(method)
    if m.budgets == "one":
        return {1: run_method(method, policy, prm, problems, 1, seed, cfg)}
    budgets = sorted(set(budgets))
    for n in budgets:
        validate_budget(method, n, cfg)
    if m.derivable:
        top = run_method(method, policy, prm, problems, budgets[-1], seed, cfg)
        return {n: derive(top, n, cfg) for n in budgets}
    return {n: run_method(method, policy, prm, problems, n, seed, cfg) for n in budgets}


def derive(result: SearchResult, n: int, config: SearchConfig | None = None) -> SearchResult:
    """The run at budget ``n`` contained in a run of a derivable method at a larger (or equal)
    budget: its first n / group_size groups, their costs re-added; wall time scaled by the kept
    share (an estimate: the run was batched, so per-group time was never measured). This is the
    only derivation of smaller N: collect writes its tables from it."""
    cfg = config or SearchConfig()
    m = get_method(result.method)
    if not m.derivable:
        derivable = [name for name in method_names() if _REGISTRY[name].derivable]
        raise ValueError(f"{result.method} cannot be derived from a larger run (only {', '.join(derivable)})")
    size = m.group_size(cfg)
    check_budget(n, size if size > 1 else None, result.method)
    if n > result.n:
        raise ValueError(f"cannot subsample {result.method} to N={n} from a run at N={result.n}")
    if n == result.n:
        return result
    groups = n // size
    cands = [replace(c, n=n, steps=list(c.steps), rewards=list(c.rewards), step_tokens=list(c.step_tokens))
             for c in result.candidates if c.subtree < groups]
    runs = [replace(r, n=n, group_policy_tokens=r.group_policy_tokens[:groups],
                    group_prm_tokens=r.group_prm_tokens[:groups]) for r in result.runs]
    return SearchResult(result.method, n, result.seed, cands, runs,
                        wall_s=result.wall_s * n / result.n,
                        policy_calls=result.policy_calls, prm_calls=result.prm_calls,
                        extra={**result.extra, "derived_from_n": result.n})
