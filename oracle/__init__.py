"""An independent count of views, written without ``counting/``: the tests' and the demo's
reference."""
