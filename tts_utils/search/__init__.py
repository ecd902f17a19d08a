"""Test-time search methods (docs/DESIGN.md, "Search methods"), each batched across problems.

Every module of this folder that calls ``registry.register`` is a method (one file each); they
are all imported here, so ``run_method(name, ...)``, ``get_method(name)`` and collect see them.
``derive`` turns a run of a derivable method (BoN, majority, DVTS) at N_max into the run at a
smaller N; beam search must run per N. Where to add a method: docs/DESIGN.md, "Adding things".

Owns the methods, their registry (``registry``) and shared parts (``common``), and the scoring
and voting rules (``voting``), which majority voting applies here and
``analysis`` applies to stored candidates. May import ``models`` and ``problems``; never
``collect``, ``analysis`` or ``study``.
"""

from __future__ import annotations

import importlib
import pkgutil

from tts_utils.search.common import (
    Candidate,
    ProblemRun,
    SearchConfig,
    SearchResult,
    check_budget,
    derive_seed,
)
from tts_utils.search.registry import (
    Method,
    derive,
    get_method,
    method_names,
    register,
    run_budgets,
    run_method,
    unregister,
    validate_budget,
)

# Import every module of the package (sorted by name, so registration order is fixed) so that each
# method file registers itself; common, registry and voting are the modules that are not methods.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from tts_utils.search.beam_search import beam_search  # noqa: E402
from tts_utils.search.best_of_n import best_of_n  # noqa: E402
from tts_utils.search.cot import cot  # noqa: E402
from tts_utils.search.dvts import dvts  # noqa: E402
from tts_utils.search.majority import majority  # noqa: E402
from tts_utils.search.pass1_samples import pass1_samples  # noqa: E402

__all__ = [
    "Candidate", "Method", "ProblemRun", "SearchConfig", "SearchResult", "beam_search", "best_of_n",
    "check_budget", "cot", "derive", "derive_seed", "dvts", "get_method", "majority", "method_names",
    "pass1_samples", "register", "run_budgets", "run_method", "unregister", "validate_budget",
]
