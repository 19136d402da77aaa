"""Settings: the environment read once, typed and checked, and the error a user can fix."""
