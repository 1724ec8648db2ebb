"""The sandbox side of the executor: what runs inside the sandbox.

Every module here is standard library only and imports nothing outside this folder: the
isolation backends (:mod:`codedpo.execution.backends`) bind these files, read-only, into the
sandbox and start ``harness.py`` by path. The trust boundary is this folder's boundary.
"""
