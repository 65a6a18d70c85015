"""A tiny random chat model built locally, for tests, `configs/train/tiny-cpu.yaml` and the sim-free
parts of the demo on machines with no model hub.

It is a real Qwen2 architecture (hidden 64, 2 layers) with a byte-level BPE tokenizer trained on
the fly, so every code path (chat template, generation, LoRA, TRL trainers, Outlines) runs as it
would with a real model; only the weights are random. Built once and cached on disk.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TINY_VERSION = "1"
TINY_SEED = 0  # its random weights; with the version, it names what is cached

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant' }}{{ '\n' }}"
    "{% generation %}{{ message['content'] }}{{ '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] }}{{ '\n' }}{{ message['content'] }}{{ '<|im_end|>' }}{{ '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant' }}{{ '\n' }}{% endif %}"
)

_CORPUS = [
    "I hear how hard this has been for you, and your feelings make sense.",
    "It sounds like you are carrying a lot right now. What would help most today?",
    "(Emotional Validation) That sounds really painful.",
    "(Affirmation) You have already shown a lot of strength by reaching out.",
    "(Collaborative Planning) Shall we make a small plan together for this week?",
    '{"empathy": 3, "information": 2, "humanoid": 4, "strategy": 3}',
    '{"Emotional Validation": 7, "Affirmation": 5, "Share Information": 2}',
    "0 1 2 3 4 5 6 7 8 9 10 { } [ ] , : \" ' ( ) . ! ?",
    "I feel so lonely since I moved. My boss yelled at me and I cannot sleep.",
    "[END] Thank you, that helps. Goodbye.",
]


def default_path() -> Path:
    base = Path(os.environ.get("ESCPRO_CACHE", Path.home() / ".cache" / "escpro"))
    return base / f"tiny-qwen2-v{TINY_VERSION}"


def ensure_tiny_model() -> Path:
    """Build (once) and return a directory loadable with from_pretrained."""
    target = default_path()
    if (target / "config.json").exists() and (target / "tokenizer.json").exists():
        return target
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"

    torch.manual_seed(TINY_SEED)
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id

    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    fast.save_pretrained(tmp)
    (tmp / "escpro_tiny.json").write_text(json.dumps({"version": TINY_VERSION, "seed": TINY_SEED}))
    try:
        tmp.rename(target)
    except OSError:  # another process built it first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target
