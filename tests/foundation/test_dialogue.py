"""escpro.dialogue: the one utterance type and the one node -> turns definition."""

from escpro.dialogue import Utterance as U
from escpro.dialogue import gold_indices, gold_split, node_turns


def seed():
    return [U("supporter", "Hi!", "Affirmation", context_only=True), U("seeker", "I lost my job.", "x"),
            U("supporter", "That is hard.", "Emotional Validation"), U("seeker", "It is."),
            U("supporter", "ok", None), U("seeker", "..."),
            U("supporter", "Let us plan.", "Collaborative Planning"), U("seeker", "Thanks.")]


def test_gold_split_keeps_context_but_makes_no_gold_of_it():
    turns = seed()
    assert gold_indices(turns) == [2, 6]
    split = gold_split(turns)
    # context turns stay dialogue, stripped of seed bookkeeping; a seeker turn has no strategy
    assert split.root_history == (U("supporter", "Hi!", "Affirmation"), U("seeker", "I lost my job."))
    assert [t.strategy for t in split.turns] == ["Emotional Validation", "Collaborative Planning"]
    # an unlabelled supporter turn is part of the preceding gold turn's tail
    assert split.tails == ((U("seeker", "It is."), U("supporter", "ok"), U("seeker", "...")),
                           (U("seeker", "Thanks."),))
    assert gold_split([U("seeker", "hi"), U("supporter", "hey")]) is None


def test_node_turns():
    assert node_turns("A", "hello", "yes", False) == (U("supporter", "hello", "A"), U("seeker", "yes"))
    # an end node whose seeker only ended adds no seeker turn; one with closing words does
    assert node_turns("A", "hello", "", True) == (U("supporter", "hello", "A"),)
    assert node_turns("A", "hello", "bye", True) == (U("supporter", "hello", "A"), U("seeker", "bye"))
    # a gold node is followed by the seed's turns up to the next gold turn, even an empty tail
    tail = (U("seeker", "s"), U("supporter", "x"), U("seeker", "t"))
    assert node_turns("A", "g", "s\nt", False, tail) == (U("supporter", "g", "A"), *tail)
    assert node_turns("A", "g", "", True, ()) == (U("supporter", "g", "A"),)
