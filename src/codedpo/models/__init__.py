"""The policies: loading a checkpoint or a Hub model, its chat format, and the demo policies.

- :mod:`~codedpo.models.load`: a full model directory, a Hub id or a LoRA adapter;
- :mod:`~codedpo.models.chat`: token sequences of a chat policy (prompt and response);
- :mod:`~codedpo.models.demo`: ``codedpo build-demo-model`` (a tiny model trained from scratch);
- :mod:`~codedpo.models.demo_families`: the paper models' chat formats the demo policies imitate.
"""
