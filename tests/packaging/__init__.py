"""The installable package: what the wheel carries, where it is read from, ``init``."""
