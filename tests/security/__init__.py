"""Attack tests: each test performs one attack against a real server process (the fixtures of
``tests/conftest.py``) and names, in its docstring, the AWS rule that makes it fail."""
