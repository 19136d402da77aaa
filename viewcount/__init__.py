"""viewcount: the command line and the tools around the layers (synthetic producer, oracle)."""
