"""Sandboxed execution of untrusted code with verdicts decided on the trusted side."""
