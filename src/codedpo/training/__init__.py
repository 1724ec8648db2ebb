"""Training through TRL: DPO, and the RFT baseline (SFT on the chosen responses).

- :mod:`~codedpo.training.train`: ``codedpo train`` (launched by ``accelerate launch -m codedpo``);
- :mod:`~codedpo.training.fields`: what a recipe may set (ours and TRL's fields), checked early.
"""
