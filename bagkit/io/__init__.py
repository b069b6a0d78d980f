"""Files in and out: the one table reader (``tables``), atomic outputs that never overwrite what
bagkit did not write (``outputs``) and file hashing (``hashing``). Imports nothing of bagkit but
``bagkit.errors``."""
