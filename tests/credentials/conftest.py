import pytest

# support.py holds asserts shared by the test files: have pytest explain them as it does there.
pytest.register_assert_rewrite("support")
