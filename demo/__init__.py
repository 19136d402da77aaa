"""``viewcount demo``: the whole cycle on generated data."""
