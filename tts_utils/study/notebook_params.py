"""Checks of a notebook's parameters, run inside the notebook (``study.grid_config`` calls
``check_notebook``), so that every route fails loudly and early: the runner, plain papermill
(``-p``, ``-f``) and Jupyter.

* **Unknown names**: papermill only warns about a parameter the notebook does not declare and
  runs the notebook's own default (a typo, or a whole profile file passed with ``-f``, which
  arrives as two parameters ``defaults`` and ``notebooks``). In the kernel, the cell papermill
  injects is in IPython's input history right after the parameters cell, so both can be read
  back and compared.
* **Values**: a name that must be one of a list parameter (``prm`` one of ``prms``), names that
  must be among one (``weak_prms`` in ``prms``), a voting rule, and lists of integers
  (``budgets = "4,8"`` from a command line is a string, not a list) fail naming the parameter,
  instead of an empty table failing far away in pandas.
* **Types** (``check_types``, run by ``tts_utils.run_notebooks`` on every notebook before the
  first one starts): a value must have its default's type (an int passes for a float).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from tts_utils.search.voting import VOTING_RULES

# parameter -> the list parameter its value must come from (large_policy may lie outside the
# grid on purpose: notebook 06 runs CoT alone for it)
MEMBER_OF = {
    "prm": "prms", "short_prm": "prms", "long_prm": "prms", "sensitive_prm": "prms", "insensitive_prm": "prms",
    "policy": "policies", "small_policy": "policies",
}
SUBSET_OF = {"small_policies": "policies", "hard_prms": "prms", "weak_prms": "prms", "strong_prms": "prms"}
INT_LISTS = ("budgets", "seeds")
OPTIONAL_INT_LISTS = ("hard_budgets",)  # may be empty: [] means as the main benchmark's list
STR_LISTS = ("policies", "prms", *SUBSET_OF)
INJECTED_MARK = "# Parameters"  # the first line of the cell papermill injects


class NotebookParameterError(ValueError):
    """A notebook parameter that cannot run; the message names it."""


def assigned_names(source: str) -> list[str]:
    """Names assigned at the top level of a cell's source, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def unknown_injected(history: list[str]) -> tuple[list[str], list[str]]:
    """(injected names the parameters cell does not declare, declared names), from a kernel's
    input history; ([], []) when no papermill-injected cell was run."""
    for i in range(len(history) - 1, 0, -1):
        if history[i].lstrip().startswith(INJECTED_MARK):
            declared = assigned_names(history[i - 1])
            return [n for n in assigned_names(history[i]) if n not in declared], declared
    return [], []


def check_values(params: Mapping[str, object]) -> None:
    """Raise NotebookParameterError for the first bad value among ``params`` (name -> value)."""
    for name in (*INT_LISTS, *OPTIONAL_INT_LISTS):
        if name in params:
            v = params[name]
            empty_ok = name in OPTIONAL_INT_LISTS
            if not isinstance(v, list | tuple) or not (v or empty_ok) or any(
                    isinstance(x, bool) or not isinstance(x, int) for x in v):
                raise NotebookParameterError(f"parameter {name!r} must be a {'' if empty_ok else 'non-empty '}list "
                                             f"of integers such as [4, 8], got {v!r}")
    for name in STR_LISTS:
        if name in params:
            v = params[name]
            if not isinstance(v, list | tuple) or any(not isinstance(x, str) for x in v):
                raise NotebookParameterError(f"parameter {name!r} must be a list of names, got {v!r}")
    if "rule" in params and params["rule"] not in VOTING_RULES:
        raise NotebookParameterError(f"parameter 'rule' is {params['rule']!r}, not a voting rule; "
                                     f"known: {', '.join(VOTING_RULES)}")
    for name, among in MEMBER_OF.items():
        if name in params and among in params and params[name] not in params[among]:
            raise NotebookParameterError(f"parameter {name!r} is {params[name]!r}, which is not in "
                                         f"{among!r} {list(params[among])}")
    for name, among in SUBSET_OF.items():
        if name in params and among in params:
            extra = [x for x in params[name] if x not in params[among]]
            if extra:
                raise NotebookParameterError(f"parameter {name!r} has {extra}, which are not in {among!r} "
                                             f"{list(params[among])}")


def check_types(defaults: Mapping[str, object], params: Mapping[str, object]) -> None:
    """Raise NotebookParameterError for the first value in ``params`` whose type is not its default's
    (defaults that are None or ``...``, not a literal, take anything)."""
    for name, value in params.items():
        default = defaults.get(name)
        if default is None or default is ...:
            continue
        want = (int, float) if type(default) is float else type(default)
        # bool is an int to isinstance: True for a count, or 1 for a flag, is a mistake
        if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, want):
            raise NotebookParameterError(f"parameter {name!r} must be of type {type(default).__name__} like its "
                                         f"default {default!r}, got {value!r}")


def check_notebook() -> None:
    """In a notebook's kernel: fail on parameters injected but not declared, then check the
    declared parameters' values. Outside IPython it does nothing."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    ns = shell.user_ns
    unknown, declared = unknown_injected(list(ns.get("In", [])))
    if {"defaults", "notebooks"} <= set(unknown):
        raise NotebookParameterError(
            "a run_notebooks profile was passed as a papermill parameter file; pass the flat file of this "
            "notebook instead (notebooks/params/<profile>/<notebook>.yaml) or run "
            "python -m tts_utils.run_notebooks --profile <profile> --only <notebook>")
    if unknown:
        raise NotebookParameterError(f"unknown parameter(s) {unknown}: this notebook declares {declared}")
    names = declared or [*MEMBER_OF, *SUBSET_OF, *INT_LISTS, *OPTIONAL_INT_LISTS, *STR_LISTS, "rule"]
    check_values({n: ns[n] for n in names if n in ns})
