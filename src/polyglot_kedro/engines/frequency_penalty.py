"""The OpenAI/vLLM frequency penalty as a transformers ``LogitsProcessor``.

transformers has no frequency penalty; its ``repetition_penalty`` is
multiplicative, ignores how often a token occurred and also penalises prompt
tokens. OpenAI and vLLM instead subtract ``penalty * count(token)``, where the
count is taken over the tokens generated so far (never the prompt).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor


class FrequencyPenaltyLogitsProcessor(LogitsProcessor):
    """``logits[t] -= penalty * (times t was generated so far)``.

    With left padding every row of a batch has the same prompt length, so the
    generated part is ``input_ids[:, prompt_length:]``. transformers applies
    custom processors before its temperature/top-k/top-p warpers, which is
    vLLM's order too.

    Args:
        penalty: the frequency penalty (vLLM accepts -2..2).
        prompt_length: padded prompt length (``input_ids.shape[1]`` at the start).
    """

    def __init__(self, penalty: float, prompt_length: int):
        self.penalty = float(penalty)
        self.prompt_length = int(prompt_length)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length :]
        if self.penalty == 0.0 or generated.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores)
        counts.scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
        return scores - self.penalty * counts
