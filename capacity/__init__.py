"""``viewcount capacity``: the hardware a target load needs."""
