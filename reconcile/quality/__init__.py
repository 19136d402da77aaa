"""Data-quality gates of the nightly run, as Great Expectations 1.x suites."""
