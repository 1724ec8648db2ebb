"""Training through TRL: DPO, the RFT baseline (SFT on the chosen responses), and GRPO with
execution rewards.

- :mod:`~codedpo.training.train`: ``codedpo train`` (launched by ``accelerate launch -m codedpo``);
- :mod:`~codedpo.training.fields`: what a recipe may set (ours and TRL's fields), checked early;
- :mod:`~codedpo.training.grpo`: TRL's ``GRPOTrainer`` rewarded by the sandboxed executor, its
  rollouts and budget;
- :mod:`~codedpo.training.resume`: a killed run resumes from its last complete checkpoint.
"""
