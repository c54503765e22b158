import random


def backoff(attempt: int, base: float = 0.1, cap: float = 20.0) -> float:
    """Full-jitter exponential backoff: a random wait up to base * 2**attempt."""
    return random.uniform(0, min(cap, base * 2**attempt))
