"""One tree's search with a scripted RoleSet, against trees computed by hand.

The scripted roles (tests/mcts/conftest.py): the judge gives R = 1 / 0 / -1 to a supporter turn
using strategy A / B / C; the seeker ends right after a C turn; Strategy scores are scripted per
test. Priors are softmax(score / 5).
"""

from __future__ import annotations

import asyncio
import math

import pytest

from escpro.mcts.calls import CallRecorder
from escpro.mcts.config import BuildConfig
from escpro.mcts.scheduler import search_class
from escpro.mcts.state import TreeState
from escpro.mcts.tree import walk
from escpro.mcts.world import BadSeed, DialogueWorld, gold_layout

P_HI, P_MID, P_LO = (math.exp(x) / (math.exp(1) + math.exp(0.6) + math.exp(0.2)) for x in (1, 0.6, 0.2))


def make_search(roles, dialogue, cache=True, **cfg):
    base = dict(min_iterations=0, max_iterations=3, min_end_nodes=99, max_end_nodes=99,
                sim_max_rounds=2)
    base.update(cfg)
    config = BuildConfig(**base)
    layout = gold_layout(dialogue, roles.taxonomy.names)
    rec = CallRecorder("run", "tree", [])
    world = DialogueWorld(roles, dialogue, layout, rec, {} if cache else None)
    deltas = []

    async def commit(d):
        deltas.append(d)

    return search_class(config)(TreeState("tree", "run"), world, config, commit), deltas


def by_path(search):
    return {nd.path: nd for nd in walk(search.s.root)}


def test_gold_initialisation(scripted, make_dialogue):
    roles = scripted()
    search, deltas = make_search(roles, make_dialogue(strategies=("A", "B")))
    asyncio.run(search.init_gold())
    nodes = by_path(search)
    # root + 3 children of the root + 3 children of the first gold node
    assert sorted(nodes) == [(), (0,), (0, 0), (0, 1), (0, 2), (1,), (2,)]
    root, g0, g1 = nodes[()], nodes[(0,)], nodes[(0, 1)]
    assert (root.kind, root.q, root.n, root.seeker_text) == ("root", 1.0, 100, "s0")
    assert (g0.kind, g0.strategy, g0.q, g0.n, g0.is_gold) == ("expanded", "A", 1.0, 100, True)
    assert (g0.supporter_text, g0.seeker_text) == ("g0", "s1")
    assert (g1.kind, g1.strategy, g1.is_end, g1.is_gold) == ("end", "B", True, True)
    assert g1.prior == pytest.approx(P_MID)
    for p in [(1,), (2,), (0, 0), (0, 2)]:
        assert nodes[p].kind == "unexpanded" and not nodes[p].is_gold and nodes[p].n == 0
    assert nodes[(2,)].prior == pytest.approx(P_LO)
    assert search.s.end_count == 1
    # Gold turns are scored on the FULL history (greeting and first seeker turn included).
    strat_calls = [ctx for role, ctx, _ in roles.log if role == "strategy"]
    assert [tuple(u.text for u in c.history) for c in strat_calls] == [
        ("hello there", "s0"),
        ("hello there", "s0", "g0", "s1"),
    ]


def test_gold_init_09_01_rule(scripted, make_dialogue):
    # The Strategy role leaves the gold strategy (B at the second gold turn) unscored.
    def scores(ctx):
        return {"A": 5, "C": 1} if len(ctx.history) > 2 else {"A": 5, "B": 3, "C": 1}

    search, _ = make_search(scripted(scores=scores), make_dialogue(strategies=("A", "B")))
    asyncio.run(search.init_gold())
    nodes = by_path(search)
    z = math.exp(1) + math.exp(0.2)
    assert nodes[(0, 1)].prior == pytest.approx(0.1) and nodes[(0, 1)].is_gold
    assert nodes[(0, 0)].prior == pytest.approx(0.9 * math.exp(1) / z)
    assert nodes[(0, 2)].prior == pytest.approx(0.9 * math.exp(0.2) / z)


def test_iterations_by_hand_end_nodes(scripted, make_dialogue):
    """Scores favour C (prior 0.47), and C turns end the dialogue (R = -1)."""
    roles = scripted(scores=lambda ctx: {"A": 1, "B": 3, "C": 5})
    search, deltas = make_search(roles, make_dialogue(strategies=("A", "B")))
    asyncio.run(search.run())
    nodes = by_path(search)
    root = nodes[()]
    # it 1: PUCB A = 1 + .212*10/101, B = .316*10, C = .472*10 -> C; extend -> end; judge once.
    # it 2: B = .316*sqrt(101) = 3.18 > C = -1 + .472*sqrt(101)/2 = 1.37 -> B; extend; expand;
    #       the highest-prior child B.C ends -> judged once.
    # it 3: C = -1 + .472*sqrt(102)/2 = 1.38 > B = -1 + .316*sqrt(102)/2 = 0.60 -> C (end) again.
    assert [d.tree_row["iterations"] for d in deltas[1:4]] == [1, 2, 3]
    c, b, bc = nodes[(2,)], nodes[(1,)], nodes[(1, 2)]
    assert (c.kind, c.q, c.n, c.created_iter) == ("end", -1.0, 2, 0)
    assert (b.kind, b.q, b.n) == ("expanded", -1.0, 1)
    assert (bc.kind, bc.q, bc.n, bc.created_iter) == ("end", -1.0, 1, 2)
    assert (nodes[(1, 0)].kind, nodes[(1, 1)].kind) == ("unexpanded", "unexpanded")
    assert root.n == 103
    assert root.q == pytest.approx((100 - 1 - 1 - 1) / 103)
    assert search.s.end_count == 3
    # calls: gold 2; it1: 2 + 1 judge; it2: 2 + 1 + 2 + 1; it3: one judgement (answered from cache)
    assert roles.sent == 2 + 3 + 6 + 0
    judged = [j for d in deltas for j in d.judgements]
    assert [(j["node_id"], j["iteration"], j["reward"]) for j in judged] == [
        ("tree/r.2", 1, -1.0), ("tree/r.1.2", 2, -1.0), ("tree/r.2", 3, -1.0)]
    calls = [c for d in deltas for c in d.calls]
    assert calls[-1]["cached"] is True and calls[-1]["call_id"] == "tree:3:0"
    assert search.s.status == "done" and search.s.stop_reason == "max_iterations"


def test_iteration_with_rollout_by_hand(scripted, make_dialogue):
    """Scores favour A (never ends, R = 1): iteration 1 expands B and rolls out from B.A."""
    roles = scripted()
    search, deltas = make_search(roles, make_dialogue(strategies=("A", "B")), max_iterations=1)
    asyncio.run(search.run())
    nodes = by_path(search)
    b, ba = nodes[(1,)], nodes[(1, 0)]
    assert (b.kind, b.supporter_text, b.seeker_text) == ("expanded", "sup1-B", "seek3")
    assert (ba.kind, ba.supporter_text, ba.strategy) == ("expanded", "sup2-A", "A")
    assert [ch.prior for ch in b.children] == pytest.approx([P_HI, P_MID, P_LO])
    assert (ba.q, ba.n, b.q, b.n) == (1.0, 1, 1.0, 1)
    assert nodes[()].n == 101 and nodes[()].q == pytest.approx(1.0)
    # Rolled-out turns are not nodes: only B's three children were added.
    assert len(nodes) == 7 + 3
    # 2 (extend leaf) + 1 (expand) + 2 (extend child) + 2 rounds x 3 + 3 judgements = 14
    it1 = [c for c in deltas[-1].calls] + [c for c in deltas[-2].calls]
    assert len([c for c in it1 if c["iteration"] == 1]) == 14
    js = deltas[-2].judgements or deltas[-1].judgements
    assert [j["turn_offset"] for j in js] == [0, 1, 2]
    assert all(j["node_id"] == "tree/r.1.0" for j in js)
    # Each judgement is sent once the dialogue it rates is known (up to its supporter turn):
    # the last one goes out before the last Seeker call and runs beside it, so the rollout's
    # judge step overlaps that Seeker step instead of following it.
    sent = sorted((int(m["call_id"].rsplit(":", 1)[1]), role)
                  for (role, _, _), m in zip(roles.log, roles.raw_metas, strict=True)
                  if m.get("iteration") == 1)
    assert [role for _, role in sent][-2:] == ["reward", "seeker"]
    assert [role for _, role in sent].count("reward") == 3
    assert roles.max_in_flight >= 2


def test_a_cancelled_rollout_leaves_no_judgement_running(scripted, make_dialogue):
    """A build stopped mid-rollout (Ctrl-C cancels the trees): the judgements the rollout had
    already sent are cancelled with it, none is left running or unawaited."""
    roles = scripted()
    started = []

    async def hanging_judge(ctx, **kw):
        started.append(kw["meta"]["call_id"])
        await asyncio.Event().wait()

    async def hanging_seeker(ctx, **kw):
        await asyncio.Event().wait()

    roles.judge, roles.seek = hanging_judge, hanging_seeker
    search, _ = make_search(roles, make_dialogue(strategies=("A", "B")), max_iterations=1)

    async def go():
        await search.init_gold()
        child = search.s.root.children[0]
        task = asyncio.ensure_future(search.world.roll_out(child, 2))
        while len(started) < 2:  # the child's own judgement and the first round's, sent
            await asyncio.sleep(0)  # while the first round's Seeker call hangs
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(go()) == []
    assert len(started) == 2


@pytest.mark.parametrize("judge_delay,seek_delay", [(0.0, 0.01), (0.01, 0.0)])
def test_an_iteration_whose_judgements_all_fail_names_a_judgement(scripted, make_dialogue,
                                                                   judge_delay, seek_delay):
    """Every Reward call fails and so does the rollout's last Seeker call: the iteration failed
    for want of judgements, and says so whichever of them finished last (the judgements now run
    beside the Seeker calls)."""
    roles = scripted(fail=lambda role, ctx, i: role == "reward" or (role == "seeker" and len(ctx.history) > 7))
    judge, seek = roles.judge, roles.seek

    async def slow_judge(ctx, **kw):
        await asyncio.sleep(judge_delay)
        return await judge(ctx, **kw)

    async def slow_seek(ctx, **kw):
        await asyncio.sleep(seek_delay)
        return await seek(ctx, **kw)

    roles.judge, roles.seek = slow_judge, slow_seek
    search, _ = make_search(roles, make_dialogue(strategies=("A", "B")), max_iterations=1)
    asyncio.run(search.run())
    assert search.s.failed_iterations == 1
    assert search.s.error.startswith("reward: error: scripted failure")


def test_full_iteration_costs_22_calls(scripted, make_dialogue):
    roles = scripted()
    search, deltas = make_search(roles, make_dialogue(), max_iterations=1, sim_max_rounds=4,
                                 cache=False)
    asyncio.run(search.run())
    calls = [c for d in deltas for c in d.calls if c["iteration"] == 1]
    assert len(calls) == 22
    assert [c["role"] for c in calls[:5]] == ["supporter", "seeker", "strategy", "supporter", "seeker"]
    assert sorted({c["call_id"] for c in calls}) == sorted(f"tree:1:{i}" for i in range(22))


def test_reuse_answers_off_sends_every_call(scripted, make_dialogue):
    def run(cache):
        roles = scripted(scores=lambda ctx: {"A": 1, "B": 3, "C": 5})
        search, deltas = make_search(roles, make_dialogue(), cache=cache)
        asyncio.run(search.run())
        return roles.sent, [c["cached"] for d in deltas for c in d.calls]

    sent_on, cached_on = run(True)
    sent_off, cached_off = run(False)
    assert sent_off == sent_on + 1 and not any(cached_off) and sum(cached_on) == 1


def test_stop_rules_in_search(scripted, make_dialogue):
    roles = scripted(scores=lambda ctx: {"A": 1, "B": 3, "C": 5})
    search, _ = make_search(roles, make_dialogue(), min_iterations=10, max_iterations=50,
                            min_end_nodes=3, max_end_nodes=3)
    asyncio.run(search.run())
    assert (search.s.iterations, search.s.end_count, search.s.stop_reason) == (2, 3, "max_end_nodes")
    roles = scripted(scores=lambda ctx: {"A": 1, "B": 3, "C": 5})
    search, _ = make_search(roles, make_dialogue(), min_iterations=1, max_iterations=50,
                            min_end_nodes=1)
    asyncio.run(search.run())  # the gold end node already counts: stop right at min iterations
    assert (search.s.iterations, search.s.stop_reason) == (1, "min_iterations_and_end_nodes")


def test_failing_role_marks_tree_failed_without_losing_state(scripted, make_dialogue):
    roles = scripted(fail=lambda role, ctx, i: role == "supporter")
    search, deltas = make_search(roles, make_dialogue(), max_iterations=50,
                                 max_consecutive_failures=3)
    asyncio.run(search.run())
    s = search.s
    assert s.status == "failed" and s.iterations == 3 and "supporter: error" in s.error
    assert len(by_path(search)) == 7  # the gold tree is kept
    statuses = [c["status"] for d in deltas for c in d.calls if c["iteration"] > 0]
    assert statuses == ["error"] * 3
    assert deltas[-1].tree_row["status"] == "failed"
    # each retried iteration tells the role set how many tries of it failed (typed argument)
    rounds = [m["retry_round"] for m in roles.metas if m["iteration"] > 0]
    assert rounds == [0, 1, 2]
    assert all("retry_round" not in m and "priority" not in m for m in roles.raw_metas)


def test_failed_rollout_judgements_average_the_rest(scripted, make_dialogue):
    # Every judgement of a rolled-out turn fails; the child's own (offset 0) survives. The
    # child's judged dialogue is [s0, leaf's turn, its seeker reply, child's turn]: 4 utterances.
    def fail(role, ctx, i):
        return role == "reward" and len(ctx.history) > 4

    roles = scripted(fail=fail)
    search, deltas = make_search(roles, make_dialogue(), max_iterations=1)
    asyncio.run(search.run())
    js = [j for d in deltas for j in d.judgements]
    assert [j["turn_offset"] for j in js] == [0]
    assert by_path(search)[(1, 0)].q == 1.0 and search.s.consecutive_failures == 0


def test_bad_seeds_are_refused(make_dialogue):
    from escpro.dialogue import Utterance as Turn
    from escpro.seeds.model import Dialogue

    no_gold = Dialogue("x", 0, "s", "t", (Turn("seeker", "hi"), Turn("supporter", "hey")))
    with pytest.raises(BadSeed, match="no strategy-labelled"):
        gold_layout(no_gold, ["A", "B", "C"])
    no_seeker = Dialogue("x", 0, "s", "t", (Turn("supporter", "hey", "A"), Turn("seeker", "hi")))
    with pytest.raises(BadSeed, match="no seeker turn"):
        gold_layout(no_seeker, ["A", "B", "C"])
    with pytest.raises(BadSeed, match="not in the taxonomy"):
        gold_layout(make_dialogue(strategies=("A", "Z")), ["A", "B", "C"])


def test_gold_init_asks_failed_turns_again(scripted, make_dialogue):
    # The very first Strategy call fails once; the retry of that turn succeeds.
    roles = scripted(fail=lambda role, ctx, i: i == 0)
    search, deltas = make_search(roles, make_dialogue(), max_iterations=0)
    asyncio.run(search.run())
    assert search.s.status == "done" and len(by_path(search)) == 7
    gold_calls = [c for d in deltas for c in d.calls if c["iteration"] == 0]
    assert [c["status"] for c in gold_calls] == ["error", "ok", "ok"]
    assert [c["call_id"] for c in gold_calls] == ["tree:0:0", "tree:0:1", "tree:0:2"]
    # A turn that keeps failing fails the tree at initialisation, with the reason.
    roles = scripted(fail=lambda role, ctx, i: role == "strategy" and len(ctx.history) > 2)
    search, _ = make_search(roles, make_dialogue(), max_consecutive_failures=2)
    asyncio.run(search.run())
    assert search.s.status == "failed"
    assert search.s.error.startswith("gold initialisation: strategy scoring failed at gold turn 1")


def test_tree_parallel_search_keeps_the_tree_consistent(scripted, make_dialogue):
    roles = scripted(scores=lambda ctx: {"A": 4, "B": 3, "C": 2})
    search, deltas = make_search(roles, make_dialogue(), max_iterations=30, tree_parallel=4,
                                 cache=False)
    asyncio.run(search.run())
    s = search.s
    assert s.status == "done" and s.iterations == 30 and s.stop_reason == "max_iterations"
    assert roles.max_iters_in_flight >= 2  # iterations of one tree really overlapped
    nodes = list(walk(s.root))
    assert all(nd.vl == 0 and not nd.busy for nd in nodes)
    judged = {j["iteration"] for d in deltas for j in d.judgements}
    assert s.root.n == 100 + len(judged)
    for nd in nodes:  # N of a node = its own backprops + its children's (gold: + 100)
        if nd.children and not nd.is_gold:
            assert nd.n >= sum(ch.n for ch in nd.children)
    ids = [c["call_id"] for d in deltas for c in d.calls]
    assert len(ids) == len(set(ids))
    assert s.node_count == len(nodes)


def test_calls_carry_the_trees_remaining_work_as_their_priority(scripted, make_dialogue):
    """Waiting calls are served most-work-left first (the openai backend's slots): before its
    first iteration a tree counts PRIOR_CALLS_PER_ITERATION per iteration left; after, its own
    calls per iteration so far. Its gold initialisation goes before every iteration's call."""
    from escpro.mcts.search import GOLD_PRIORITY
    from escpro.mcts.search import PRIOR_CALLS_PER_ITERATION as PRIOR

    roles = scripted()
    search, deltas = make_search(roles, make_dialogue(), max_iterations=3, cache=False)
    asyncio.run(search.run())
    per_iter = {}
    for d in deltas:
        for c in d.calls:
            per_iter[c["iteration"]] = per_iter.get(c["iteration"], 0) + 1
    prio = {}
    for m in roles.metas:
        prio.setdefault(m["iteration"], set()).add(m["priority"])
    assert prio[0] == {GOLD_PRIORITY}
    assert GOLD_PRIORITY < min(min(p) for it, p in prio.items() if it)
    assert prio[1] == {-3 * PRIOR}
    assert prio[2] == {-2 * per_iter[1]}
    assert prio[3] == {-1 * (per_iter[1] + per_iter[2]) / 2}
