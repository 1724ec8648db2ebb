"""Preference pairs and the RFT set from executed on-policy samples.

- :mod:`~codedpo.pairs.build`: ``codedpo build-pairs`` (pairs, the RFT set, statistics);
- :mod:`~codedpo.pairs.strategies`: how a problem's pairs are drawn, and the scores they use.

Which responses tried to game the tests is :mod:`codedpo.execution.hacks` (counted in the stats).
"""
