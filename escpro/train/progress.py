"""Training's one progress display: steps, loss (and reward accuracy for preference methods),
ETA, as an escpro bar on stderr. It replaces transformers' own bar (ProgressCallback) and the
raw `{'loss': ...}` dicts it or PrinterCallback print on stdout; the full log rows still go to
metrics.json, and to the debug log at --log-level debug."""

from __future__ import annotations

import logging
from typing import Any

from escpro.progress import make_bar

log = logging.getLogger(__name__)

SHOWN = (("loss", "loss"), ("eval_loss", "eval_loss"), ("rewards/accuracies", "acc"),
         ("rewards/margins", "margin"), ("eval_rewards/accuracies", "eval_acc"))


def callback_class() -> type:
    from transformers import TrainerCallback

    class EscproProgress(TrainerCallback):
        def __init__(self, desc: str, enabled: bool) -> None:
            self.desc = desc
            self.enabled = enabled
            self.bar: Any = None
            self.post: dict[str, str] = {}

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ARG002
            if self.enabled and state.is_world_process_zero:
                self.bar = make_bar(state.max_steps, self.desc, "steps")
                self.bar.update(state.global_step)

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ARG002
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ARG002
            if not state.is_world_process_zero or not logs:
                return
            log.debug("step %s: %s", state.global_step, logs)
            for key, short in SHOWN:
                if isinstance(logs.get(key), int | float):
                    self.post[short] = f"{logs[key]:.4g}"
            if self.bar is not None:
                self.bar.set_postfix(self.post, refresh=True)

        def on_train_end(self, args, state, control, **kwargs):  # noqa: ARG002
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return EscproProgress


def install(trainer: Any, desc: str, enabled: bool) -> None:
    """Swap transformers' console callbacks for escpro's bar (disabled: no display at all)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(callback_class()(desc, enabled))
