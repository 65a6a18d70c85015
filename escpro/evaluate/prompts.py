"""Prompts for evaluation: the training-time chat format, and the paper's decoding baselines.

The plain prompt is exactly what training uses (escpro.formatting.to_messages: the system prompt
listing the strategies, seeker turns as user messages, supporter turns as assistant messages
written "(<Strategy>) <reply>" when their strategy is known), so a tuned model is tested in the
format it learned. The baselines (paper Appendix E) add stages on top of it:

- Direct-Refine: the model rewrites its own first answer, no other input.
- Self-Refine (Madaan et al.): the model writes feedback on its answer, then rewrites it with
  the feedback.
- w/ Example: one random training dialogue, with its strategies, is shown in the system prompt.

The paper gives no prompt wording for the baselines; the wording below is this project's.
"""

from __future__ import annotations

from collections.abc import Iterable

from escpro.dialogue import Utterance
from escpro.evaluate.testsets import ROLE_NAMES, TestItem
from escpro.formatting import format_supporter_turn, system_prompt, to_messages
from escpro.seeds.model import Dialogue
from escpro.taxonomy import Taxonomy

FORMAT_RULE = 'Answer with the reply only, written as "(<Strategy>) <reply>".'

DIRECT_REFINE = (
    "Here is a conversation between a help seeker (User) and a supporter (Supporter), and a "
    "draft of the supporter's next reply.\n\nConversation:\n{transcript}\n\nDraft reply:\n"
    "{draft}\n\nRefine the draft into a better next reply. " + FORMAT_RULE
)

SELF_REFINE_FEEDBACK = (
    "Here is a conversation between a help seeker (User) and a supporter (Supporter), and a "
    "draft of the supporter's next reply.\n\nConversation:\n{transcript}\n\nDraft reply:\n"
    "{draft}\n\nGive short, specific feedback on the draft: is its strategy the most suitable "
    "one for this moment, and is the reply empathetic, helpful and natural? Do not rewrite it."
)

SELF_REFINE_REWRITE = (
    "Here is a conversation between a help seeker (User) and a supporter (Supporter), a draft "
    "of the supporter's next reply, and feedback on the draft.\n\nConversation:\n{transcript}"
    "\n\nDraft reply:\n{draft}\n\nFeedback:\n{feedback}\n\nRewrite the draft using the "
    "feedback. " + FORMAT_RULE
)

EXAMPLE_HEADER = "\n\nHere is an example conversation between a help seeker and a supporter:\n"


def transcript_of(turns: Iterable[Utterance]) -> str:
    """"User: ..." / "Supporter: (<Strategy>) ..." lines (the baselines' conversation view)."""
    lines = []
    for t in turns:
        text = format_supporter_turn(t.strategy, t.text) if t.strategy else t.text
        lines.append(f"{ROLE_NAMES[t.speaker]}: {text}")
    return "\n".join(lines)


def transcript(item: TestItem) -> str:
    return transcript_of(item.context)


def example_text(example: Dialogue) -> str:
    return transcript_of(
        t if t.speaker == "supporter" else Utterance("seeker", t.text) for t in example.turns
    )


def answer_messages(
    item: TestItem, taxonomy: Taxonomy, example: Dialogue | None = None
) -> list[dict[str, str]]:
    """The first-stage prompt (plain, or w/ Example when `example` is given)."""
    msgs = to_messages(taxonomy, item.context)
    if example is not None:
        msgs[0] = {
            "role": "system",
            "content": msgs[0]["content"] + EXAMPLE_HEADER + example_text(example),
        }
    return msgs


def _single(taxonomy: Taxonomy, text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system_prompt(taxonomy)}, {"role": "user", "content": text}]


def direct_refine_messages(item: TestItem, taxonomy: Taxonomy, draft: str) -> list[dict[str, str]]:
    return _single(taxonomy, DIRECT_REFINE.format(transcript=transcript(item), draft=draft))


def feedback_messages(item: TestItem, taxonomy: Taxonomy, draft: str) -> list[dict[str, str]]:
    return _single(taxonomy, SELF_REFINE_FEEDBACK.format(transcript=transcript(item), draft=draft))


def rewrite_messages(
    item: TestItem, taxonomy: Taxonomy, draft: str, feedback: str
) -> list[dict[str, str]]:
    return _single(
        taxonomy,
        SELF_REFINE_REWRITE.format(transcript=transcript(item), draft=draft, feedback=feedback),
    )
