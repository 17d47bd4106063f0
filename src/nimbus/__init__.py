"""nimbus: todos, accounts, messages and products behind one secure HTTP API."""

__version__ = "0.1.0"
