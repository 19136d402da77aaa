"""What the tests share and that is not a test: helpers imported by name from
``tests.support.<module>``; the fixtures they build on are registered in the conftest.py
of the tests that use them (``tests/conftest.py``, ``tests/integration/conftest.py``)."""
