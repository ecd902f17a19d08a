"""Search semantics (docs/DESIGN.md, "Search methods") with scripted doubles whose choices are known by hand."""

from __future__ import annotations

import math
import re
from collections import defaultdict

import pytest
from conftest import KnownPRM, ScriptedPolicy, make_problems, step_value

from tts_utils.models.policy import STEP_SEPARATOR
from tts_utils.search import (
    SearchConfig,
    beam_search,
    best_of_n,
    cot,
    derive,
    derive_seed,
    dvts,
    majority,
    run_budgets,
    run_method,
)

PROBLEMS = make_problems(3)
SEP = "\x1e"  # ScriptedPolicy's question/solution separator in a prompt


def per_problem(result):
    out = defaultdict(list)
    for c in result.candidates:
        out[c.problem_id].append(c)
    return out


def rounds_of(policy):
    """Logged generate calls -> per round, per problem question, the list of (parent steps text, child text)."""
    rounds = []
    for prompts, _params, _seeds, gens in policy.calls:
        by_q = defaultdict(list)
        for prompt, g in zip(prompts, gens, strict=True):
            q, prefix = prompt.split(SEP, 1)
            by_q[q].append((prefix, g.text))
        rounds.append(by_q)
    return rounds


def ends(text: str) -> bool:
    return "\\boxed" in text or not text.endswith(STEP_SEPARATOR)


# ------------------------------------------------------------------------------------------- budgets

@pytest.mark.parametrize("rule", ["slot", "ranked"])
@pytest.mark.parametrize("n", [4, 16])
@pytest.mark.parametrize("method", ["best_of_n", "majority", "beam_search", "dvts"])
def test_every_method_ends_with_its_number_of_complete_candidates(method, n, rule):
    """N candidates, except the tree searches under the paper's rule ("slot"): N/M."""
    result = run_method(method, ScriptedPolicy(), KnownPRM(), PROBLEMS, n, seed=1,
                        config=SearchConfig(finished_paths=rule))
    groups = per_problem(result)
    count, per_subtree = n, 4
    if method in ("beam_search", "dvts") and rule == "slot":
        count, per_subtree = n // 4, 1
    assert sorted(groups) == sorted(p.id for p in PROBLEMS)
    for pid, cands in groups.items():
        assert [c.index for c in cands] == list(range(count)), pid
        for c in cands:
            assert c.n == n and c.method == method and c.seed == 1
            assert "\\boxed" in c.steps[-1], "every candidate is a complete solution here"
            assert all(s.endswith(STEP_SEPARATOR) for s in c.steps[:-1])
            if method != "majority":
                assert c.rewards == [step_value(s) for s in c.steps]
            assert c.answer in {"1", "2", "3"}
            assert c.correct == (c.answer == next(p.answer for p in PROBLEMS if p.id == pid))
    if method == "dvts":
        for cands in groups.values():
            sizes = defaultdict(int)
            for c in cands:
                sizes[c.subtree] += 1
            assert sizes == dict.fromkeys(range(n // 4), per_subtree)


def test_cot_is_one_greedy_sample_whatever_the_seed():
    pol = ScriptedPolicy()
    a, b = cot(pol, PROBLEMS, seed=0), cot(pol, PROBLEMS, seed=7)
    assert [c.steps for c in a.candidates] == [c.steps for c in b.candidates]
    assert len(a.candidates) == len(PROBLEMS) and all(c.n == 1 for c in a.candidates)
    assert all(params.temperature == 0 and params.stop is None for _, params, _, _ in pol.calls)


def test_best_of_n_samples_whole_solutions_in_one_call_and_scores_in_one():
    pol, prm = ScriptedPolicy(), KnownPRM()
    res = best_of_n(pol, prm, PROBLEMS, 4, seed=0)
    assert len(pol.calls) == 1 and len(prm.calls) == 1
    prompts, params, _, _ = pol.calls[0]
    assert len(prompts) == 4 * len(PROBLEMS)
    assert params.stop is None and params.temperature == 0.7 and params.top_p == 1.0
    assert params.max_tokens == SearchConfig().max_solution_tokens
    assert res.policy_tokens == sum(g.num_tokens for g in pol.calls[0][3])


@pytest.mark.parametrize("n", [0, -4, 6, 2, 4.0, "4", True, None])
@pytest.mark.parametrize("method", ["beam_search", "dvts"])
def test_tree_search_rejects_bad_budgets(method, n):
    with pytest.raises(ValueError, match="budget N|integer"):
        run_method(method, ScriptedPolicy(), KnownPRM(), PROBLEMS, n)


@pytest.mark.parametrize("n", [0, -1, 2.5, "3"])
def test_sampling_methods_reject_bad_budgets(n):
    with pytest.raises(ValueError, match="budget N"):
        best_of_n(ScriptedPolicy(), KnownPRM(), PROBLEMS, n)
    with pytest.raises(ValueError, match="budget N"):
        majority(ScriptedPolicy(), PROBLEMS, n)


def test_unknown_method_and_bad_search_config_are_named():
    with pytest.raises(ValueError, match="unknown method 'mcts'"):
        run_method("mcts", ScriptedPolicy(), KnownPRM(), PROBLEMS, 4)
    with pytest.raises(ValueError, match="beam_width"):
        SearchConfig(beam_width=0)
    with pytest.raises(ValueError, match="needs a PRM"):
        run_method("beam_search", ScriptedPolicy(), None, PROBLEMS, 4)


# ------------------------------------------------------------------------------------- beam search

@pytest.mark.parametrize("n,p_end", [(16, lambda d: 0.0), (16, lambda d: 0.15 * d), (8, lambda d: 0.3)])
def test_kept_finished_paths_beam_search_keeps_the_top_need_over_m_live_children(n, p_end):
    """finished_paths="kept": replays the logged rounds: every ended child is a candidate, the
    beams expanded in round r+1 are the best ceil(need/M) live children of round r (need = N -
    candidates so far), and exactly `need` children are sampled."""
    m = 4
    pol, prm = ScriptedPolicy(p_end=p_end), KnownPRM()
    cfg = SearchConfig(max_depth=6, finished_paths="kept")
    res = beam_search(pol, prm, PROBLEMS, n, seed=3, config=cfg)
    rounds = rounds_of(pol)
    assert len(pol.calls) == len(prm.calls) == len(rounds) <= cfg.max_depth  # one call per round, all problems
    for p in PROBLEMS:
        need = n
        first = rounds[0][p.problem]
        assert len(first) == n and {prefix for prefix, _ in first} == {""}  # N first steps from the root
        kept_rounds = 0
        for r, by_q in enumerate(rounds):
            children = [(prefix + text, text) for prefix, text in by_q.get(p.problem, [])]
            assert len(children) == need, (p.id, r)
            depth_limit = r + 1 == cfg.max_depth
            live = [(path, text) for path, text in children if not ends(text) and not depth_limit]
            need -= len(children) - len(live)
            if need == 0:
                assert all(p.problem not in later for later in rounds[r + 1:])
                break
            expected = [path for path, _ in sorted(live, key=lambda c: -step_value(c[1]))][: math.ceil(need / m)]
            nxt = [prefix for prefix, _ in rounds[r + 1][p.problem]]
            assert sorted(set(nxt)) == sorted(expected), (p.id, r)
            if len(live) == n:  # no path ended yet: the paper's plain rule, top N/M each with M children
                assert len(expected) == n // m and all(nxt.count(e) == m for e in expected)
            # best beams get M children each; the lowest-ranked kept beam gets the remainder
            assert [nxt.count(e) for e in expected] == [m] * (len(expected) - 1) + [need - m * (len(expected) - 1)]
            kept_rounds += 1
        assert need == 0
        assert len(per_problem(res)[p.id]) == n
    assert kept_rounds >= 1


@pytest.mark.parametrize("n,p_end", [(16, lambda d: 0.15 * d), (8, lambda d: 0.3), (16, lambda d: 0.5)])
def test_ranked_finished_paths_beam_search_ranks_ended_and_live_children_together(n, p_end):
    """finished_paths="ranked": replays the logged rounds. All children of a round are ranked by
    last-step score; walking down, ended children become candidates and live ones beams until the
    beams (M children each) cover the remaining need; the rest are dropped."""
    m = 4
    pol, prm = ScriptedPolicy(p_end=p_end), KnownPRM()
    cfg = SearchConfig(max_depth=6, finished_paths="ranked")
    res = beam_search(pol, prm, PROBLEMS, n, seed=3, config=cfg)
    rounds = rounds_of(pol)
    dropped_ended = 0
    for p in PROBLEMS:
        need, done = n, []
        for r, by_q in enumerate(rounds):
            children = [(prefix + text, text) for prefix, text in by_q.get(p.problem, [])]
            assert len(children) == need, (p.id, r)
            depth_limit = r + 1 == cfg.max_depth
            beams = []
            ranked = sorted(children, key=lambda c: -step_value(c[1]))
            for i, (path, text) in enumerate(ranked):
                if need <= len(beams) * m:
                    dropped_ended += sum(ends(t) for _, t in ranked[i:])
                    break
                if ends(text) or depth_limit:
                    done.append(path)
                    need -= 1
                else:
                    beams.append(path)
            if need == 0:
                assert all(p.problem not in later for later in rounds[r + 1:])
                break
            nxt = [prefix for prefix, _ in rounds[r + 1][p.problem]]
            assert sorted(set(nxt)) == sorted(beams), (p.id, r)
            assert [nxt.count(e) for e in beams] == [m] * (len(beams) - 1) + [need - m * (len(beams) - 1)]
        assert need == 0
        got = per_problem(res)[p.id]
        assert len(got) == n
        assert sorted("".join(c.steps) for c in got) == sorted(done)
    assert dropped_ended > 0  # the rule was exercised: some finished path ranked below the cut


@pytest.mark.parametrize("n,p_end", [(16, lambda d: 0.15 * d), (8, lambda d: 0.3), (16, lambda d: 0.5),
                                     (32, lambda d: 0.0)])
def test_paper_beam_search_gives_each_finished_path_a_slot_and_stops_when_n_over_m_are_in(n, p_end):
    """The default (the paper's code, finished_paths="slot"): replays the logged rounds. The root
    samples N first steps; each round every child is ranked by last-step score and the top
    (N/M - finished so far) are kept; a kept child that ended is finished for good, a kept live
    child gets M children next round. The search stops once N/M paths have finished, and those
    are the candidates."""
    m = 4
    pol, prm = ScriptedPolicy(p_end=p_end), KnownPRM()
    cfg = SearchConfig(max_depth=6)
    assert cfg.finished_paths == "slot"
    res = beam_search(pol, prm, PROBLEMS, n, seed=3, config=cfg)
    rounds = rounds_of(pol)
    finished_early = 0
    for p in PROBLEMS:
        slots, done, beams = n // m, [], []
        for r, by_q in enumerate(rounds):
            children = [(prefix + text, text) for prefix, text in by_q.get(p.problem, [])]
            assert len(children) == (n if r == 0 else m * len(beams)), (p.id, r)
            if r > 0:  # each kept live beam got exactly M children
                assert sorted({pre for pre, _ in by_q[p.problem]}) == sorted(beams)
            depth_limit = r + 1 == cfg.max_depth
            kept = [c for c in sorted(children, key=lambda c: -step_value(c[1]))][: slots - len(done)]
            done += [path for path, text in kept if ends(text) or depth_limit]
            beams = [path for path, text in kept if not (ends(text) or depth_limit)]
            if len(done) == slots:
                assert all(p.problem not in later for later in rounds[r + 1:]), "it stops when N/M are in"
                finished_early += r + 1 < cfg.max_depth
                break
        assert len(done) == slots
        got = per_problem(res)[p.id]
        assert sorted("".join(c.steps) for c in got) == sorted(done)
        assert [c.index for c in got] == list(range(slots))
    if p_end(1) > 0:
        assert finished_early > 0  # the rule was exercised: paths finished before the depth limit


def test_the_three_finished_path_rules_differ_and_the_option_is_checked():
    def run(rule):
        return beam_search(ScriptedPolicy(p_end=lambda d: 0.3), KnownPRM(), PROBLEMS, 16, seed=3,
                           config=SearchConfig(finished_paths=rule))

    slot, ranked, kept = run("slot"), run("ranked"), run("kept")
    texts = lambda r: sorted("".join(c.steps) for c in r.candidates)  # noqa: E731
    assert texts(ranked) != texts(kept)
    assert len(slot.candidates) == 16 // 4 * len(PROBLEMS) < len(ranked.candidates)
    # ranked keeps only finished paths that made the cut: their mean last-step score is higher
    mean_last = lambda r: sum(c.rewards[-1] for c in r.candidates) / len(r.candidates)  # noqa: E731
    assert mean_last(ranked) > mean_last(kept)
    # the paper's rule spends no more than N generations a round either
    assert all(len(prompts) <= 16 * len(PROBLEMS) for prompts, *_ in ScriptedPolicy().calls)
    with pytest.raises(ValueError, match="finished_paths"):
        SearchConfig(finished_paths="drop")


def test_beam_search_reaching_max_depth_ends_every_path():
    pol = ScriptedPolicy(p_end=lambda d: 0.0)
    res = beam_search(pol, KnownPRM(), PROBLEMS, 8, config=SearchConfig(max_depth=3))
    assert len(res.candidates) == 8 // 4 * len(PROBLEMS)
    assert {c.finish_reason for c in res.candidates} == {"max_depth"}
    assert {len(c.steps) for c in res.candidates} == {3}
    assert res.policy_calls == 3 and len(pol.calls) == 3


def test_beam_search_counts_every_generated_and_scored_token():
    pol, prm = ScriptedPolicy(), KnownPRM()
    res = beam_search(pol, prm, PROBLEMS, 16, seed=5)
    generated = sum(g.num_tokens for _, _, _, gens in pol.calls for g in gens)
    assert res.policy_tokens == generated
    scored = sum(len(q.split()) + sum(len(s.split()) for s in steps)
                 for qs, sols in prm.calls for q, steps in zip(qs, sols, strict=True))
    assert res.prm_tokens == scored
    # pruned beams cost tokens that no candidate carries: count each tree node on a kept path once
    kept_nodes = {(c.problem_id, ".".join(c.lineage.split(".")[: d + 1])): c.step_tokens[d]
                  for c in res.candidates for d in range(len(c.steps))}
    assert res.policy_tokens > sum(kept_nodes.values())
    for c in res.candidates:
        assert c.prm_tokens == len(PROBLEMS[0].problem.split()) + sum(len(s.split()) for s in c.steps)


def test_beam_search_lineage_names_the_kept_beams():
    res = beam_search(ScriptedPolicy(), KnownPRM(), PROBLEMS, 8, seed=2)
    for c in res.candidates:
        assert len(c.lineage.split(".")) == len(c.steps)
        first = int(c.lineage.split(".")[0])
        # the first step was sampled from the root with child index `first`
        assert f"s{derive_seed(2, 'beam_search', c.problem_id, 0, 0, 0, first)}" in c.steps[0]


def test_same_seed_same_result_and_batch_composition_does_not_matter():
    def table(res):
        return [(c.problem_id, c.index, c.steps, c.rewards, c.answer, c.lineage) for c in res.candidates]

    a = beam_search(ScriptedPolicy(), KnownPRM(), PROBLEMS, 8, seed=4)
    b = beam_search(ScriptedPolicy(), KnownPRM(), PROBLEMS, 8, seed=4)
    c = beam_search(ScriptedPolicy(), KnownPRM(), PROBLEMS, 8, seed=5)
    alone = beam_search(ScriptedPolicy(), KnownPRM(), PROBLEMS[1:2], 8, seed=4)
    assert table(a) == table(b)
    assert table(a) != table(c)
    assert table(alone) == [row for row in table(a) if row[0] == PROBLEMS[1].id]
    assert [(r.policy_tokens, r.prm_tokens) for r in alone.runs] == \
        [(r.policy_tokens, r.prm_tokens) for r in a.runs if r.problem_id == PROBLEMS[1].id]


# -------------------------------------------------------------------------------------------- DVTS

def _seed_of(step: str) -> int:
    return int(re.search(r" s(\d+)", step).group(1))


def test_dvts_subtrees_never_exchange_beams_and_each_keeps_its_best_child():
    n, m = 16, 4
    pol, prm = ScriptedPolicy(p_end=lambda d: 0.1 * d), KnownPRM()
    res = dvts(pol, prm, PROBLEMS, n, seed=9)
    for pid, cands in per_problem(res).items():
        steps_of = defaultdict(set)
        for c in cands:
            # the first step of subtree k was sampled from the root with subtree k's seeds
            roots = {derive_seed(9, "dvts", pid, c.subtree, 0, 0, j) for j in range(m)}
            assert _seed_of(c.steps[0]) in roots, (pid, c.subtree)
            steps_of[c.subtree].update(c.steps)
        for a in steps_of:
            for b in steps_of:
                if a != b:
                    assert not steps_of[a] & steps_of[b], "a step shared by two subtrees"
    # Replay the logged rounds, attributing each request to its subtree by its seed: each round a
    # live subtree expands ONE beam, the best live child of its own previous round.
    by_seed = {derive_seed(9, "dvts", p.id, k, r, 0, j): (p.problem, k, r)
               for p in PROBLEMS for k in range(n // m) for r in range(40) for j in range(m)}
    tree = defaultdict(list)  # (question, subtree, round) -> [(prefix, text)]
    for r, (prompts, _, seeds, gens) in enumerate(pol.calls):
        for prompt, sd, g in zip(prompts, seeds, gens, strict=True):
            q, k, rr = by_seed[sd]
            assert rr == r
            tree[q, k, r].append(tuple(prompt.split(SEP, 1)[1:]) + (g.text,))
    for (q, k, r), reqs in tree.items():
        assert len({prefix for prefix, _ in reqs}) == 1, "a subtree expands one beam a round"
        if r > 0:
            prev = [(pre + t, t) for pre, t in tree[q, k, r - 1] if not ends(t)]
            best = max(prev, key=lambda c: step_value(c[1]))[0]  # values are distinct here
            assert reqs[0][0] == best, (q, k, r)
        for j in range(n // m):  # no other subtree ever builds on this subtree's steps
            if j != k:
                for pre, _ in tree.get((q, j, r), []):
                    assert not any(pre.startswith(p0 + t0) for p0, t0 in reqs)


@pytest.mark.parametrize("small", [4, 8])
def test_dvts_at_smaller_n_is_the_first_subtrees_of_the_big_run(small):
    big = dvts(ScriptedPolicy(), KnownPRM(), PROBLEMS, 16, seed=1)
    direct = dvts(ScriptedPolicy(), KnownPRM(), PROBLEMS, small, seed=1)
    derived = derive(big, small)
    fields = lambda r: [(c.problem_id, c.index, c.subtree, c.steps, c.rewards, c.lineage, c.n)  # noqa: E731
                        for c in r.candidates]
    assert fields(derived) == fields(direct)
    assert [(r.policy_tokens, r.prm_tokens, r.n) for r in derived.runs] == \
        [(r.policy_tokens, r.prm_tokens, r.n) for r in direct.runs]
    assert derived.extra["derived_from_n"] == 16


def test_bon_and_majority_subsample_and_share_samples():
    pol = ScriptedPolicy()
    runs = run_budgets("best_of_n", pol, KnownPRM(), PROBLEMS, [4, 16], seed=2)
    assert len(pol.calls) == 1, "BoN at every N comes from one N_max run"
    direct = best_of_n(ScriptedPolicy(), KnownPRM(), PROBLEMS, 4, seed=2)
    assert [(c.problem_id, c.index, c.steps, c.rewards) for c in runs[4].candidates] == \
        [(c.problem_id, c.index, c.steps, c.rewards) for c in direct.candidates]
    assert [r.policy_tokens for r in runs[4].runs] == [r.policy_tokens for r in direct.runs]
    maj = majority(ScriptedPolicy(), PROBLEMS, 16, seed=2)
    assert [c.steps for c in maj.candidates] == [c.steps for c in runs[16].candidates]
    assert all(c.rewards == [] for c in maj.candidates)
    from tts_utils.search.majority import majority_answer

    assert majority_answer(["1", "2", None, "2.0", "3"]) == "2"  # equivalent answers vote together


def test_beam_search_cannot_be_derived():
    res = beam_search(ScriptedPolicy(), KnownPRM(), PROBLEMS, 8)
    with pytest.raises(ValueError, match="cannot be derived"):
        derive(res, 4)
    runs = run_budgets("beam_search", ScriptedPolicy(), KnownPRM(), PROBLEMS, [4, 8], seed=0)
    assert runs[8].extra == {} and runs[4].n == 4


def test_bad_subsample_budgets():
    big = dvts(ScriptedPolicy(), KnownPRM(), PROBLEMS, 8)
    with pytest.raises(ValueError, match="not divisible"):
        derive(big, 6)
    with pytest.raises(ValueError, match="cannot subsample"):
        derive(big, 16)


# ------------------------------------------------------------------- real interfaces, tiny models

@pytest.fixture(scope="module")
def tiny_models():
    """A tiny random Llama policy (char tokenizer; "\\n" favoured so steps end) and a tiny random
    Math-Shepherd-format PRM: the real TransformersPolicy / PRM classes, nothing downloaded."""
    from _tiny_lm import make_model, make_tokenizer
    from test_prm import build

    from tts_utils.models.policy import TransformersPolicy

    tok = make_tokenizer()
    policy = TransformersPolicy(make_model(tok, bias={"\n": 3.5, "<|eot_id|>": 0.5}, scale=0.3,
                                                   max_positions=2048), tok, "qwen2.5",
                                name="tiny-random")
    prm, _, _ = build("math-shepherd")
    return policy, prm


TINY_CFG = SearchConfig(max_depth=3, max_step_tokens=8, max_solution_tokens=24)


@pytest.mark.parametrize("method", ["best_of_n", "beam_search", "dvts"])
def test_searches_run_on_real_transformers_models(tiny_models, method):
    policy, prm = tiny_models
    problems = make_problems(2)
    res = run_method(method, policy, prm, problems, 8, seed=0, config=TINY_CFG)
    for pid, cands in per_problem(res).items():
        assert len(cands) == (8 if method == "best_of_n" else 8 // 4), pid
        for c in cands:
            assert len(c.rewards) == len(c.steps) >= 1
            assert all(0.0 <= r <= 1.0 for r in c.rewards)
            if method != "best_of_n":
                assert len(c.steps) <= TINY_CFG.max_depth
                assert all(t <= TINY_CFG.max_step_tokens for t in c.step_tokens)
                assert all(s.endswith(STEP_SEPARATOR) for s in c.steps[:-1])
    assert res.policy_tokens > 0 and res.prm_tokens > 0
    if method != "best_of_n":  # the models are set so that searches go deeper than one step
        assert max(len(c.steps) for c in res.candidates) == TINY_CFG.max_depth


def test_real_beam_search_does_not_depend_on_batch_and_dvts_subsamples(tiny_models):
    policy, prm = tiny_models
    problems = make_problems(2)
    both = beam_search(policy, prm, problems, 4, seed=1, config=TINY_CFG)
    alone = beam_search(policy, prm, problems[1:], 4, seed=1, config=TINY_CFG)
    assert [c.steps for c in alone.candidates] == [c.steps for c in both.candidates if c.problem_id == "p1"]
    big = dvts(policy, prm, problems[:1], 8, seed=1, config=TINY_CFG)
    small = dvts(policy, prm, problems[:1], 4, seed=1, config=TINY_CFG)
    assert [c.steps for c in derive(big, 4).candidates] == [c.steps for c in small.candidates]


@pytest.mark.parametrize("method", ["cot", "best_of_n", "beam_search"])
def test_a_prompt_too_long_for_the_model_names_its_problem(method):
    # A 6,000-character problem used to fail naming its position in the batch ("prompt 5").
    from _tiny_lm import make_model, make_tokenizer

    from tts_utils.models.policy import PromptError, TransformersPolicy
    from tts_utils.search import run_method
    from tts_utils.search.common import SearchConfig

    tok = make_tokenizer()
    policy = TransformersPolicy(make_model(tok, max_positions=256), tok, "tiny", name="tiny-test")
    problems = make_problems(3)
    problems[1] = type(problems[1])(id="the-long-one", problem="x" * 6000, answer="1", level=1)
    cfg = SearchConfig(max_step_tokens=4, max_solution_tokens=8, max_depth=2)
    with pytest.raises(PromptError, match=r"problem 'the-long-one': prompt \d+ has \d+ tokens; tiny-test allows"):
        run_method(method, policy, KnownPRM(), problems, 1 if method == "cot" else 4, 0, cfg)
