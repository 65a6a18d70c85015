"""RoleRequest.key: the answer-reuse key and the llm_calls.prompt_hash column. It must separate
every request that could get a different answer and nothing else, and stay cheap (it is computed
for every call of a build: scripts/bench_build.py measured the former JSON-based key at ~10% of
the build's CPU)."""

from __future__ import annotations

import dataclasses

from escpro.roles.base import RoleRequest, Sampling

MSGS = ({"role": "system", "content": "You judge."}, {"role": "user", "content": "Seeker: hi"})
SCHEMA = {"type": "object", "properties": {"a": {"enum": [1, 2]}}, "required": ["a"]}


def req(**kw) -> RoleRequest:
    base = {"role": "reward", "messages": MSGS, "schema": SCHEMA, "sampling": Sampling(0.0, 1.0, 120, 0, ())}
    base.update(kw)
    return RoleRequest(**base)


def test_equal_requests_share_a_key_whatever_rides_along():
    a = req()
    b = req(meta={"tree_id": "t", "iteration": 3}, prompt="transcript text",
            messages=tuple(dict(m) for m in MSGS), schema=dict(SCHEMA))
    assert a.key("m") == b.key("m")
    assert len(a.key("m")) == 32 and int(a.key("m"), 16) >= 0


def test_every_part_of_the_request_changes_the_key():
    k = req().key("m")
    variants = [
        req().key("other-model"),
        req(role="strategy").key("m"),
        req(messages=(MSGS[0], {"role": "user", "content": "Seeker: hi!"})).key("m"),
        req(messages=(MSGS[0], {"role": "assistant", "content": "Seeker: hi"})).key("m"),
        req(messages=MSGS[:1]).key("m"),
        req(schema=None).key("m"),
        req(schema={**SCHEMA, "required": []}).key("m"),
    ]
    s = Sampling(0.0, 1.0, 120, 0, ())
    for field, value in (("temperature", 0.7), ("top_p", 0.9), ("max_tokens", 121), ("seed", 1),
                         ("stop", ("\nSeeker:",))):
        variants.append(req(sampling=dataclasses.replace(s, **{field: value})).key("m"))
    variants.append(req(sampling=dataclasses.replace(s, seed=None)).key("m"))
    assert k not in variants
    assert len(set(variants)) == len(variants)


def test_text_boundaries_are_part_of_the_key():
    one = req(messages=({"role": "user", "content": "ab"}, {"role": "user", "content": "c"}))
    two = req(messages=({"role": "user", "content": "a"}, {"role": "user", "content": "bc"}))
    assert one.key("m") != two.key("m")


def test_the_memo_is_per_model():
    r = req()
    assert r.key("a") != r.key("b")
    assert r.key("a") == req().key("a")
