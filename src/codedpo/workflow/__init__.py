"""The workflow's own logic: the checked config, chains of rounds, rule flags and paths, jobs.

- :mod:`~codedpo.workflow.config`: the config checked at parse time (``snakemake -n`` included);
- :mod:`~codedpo.workflow.chains`: arms, recipes and rounds as chains;
- :mod:`~codedpo.workflow.launch`: ``codedpo launch`` (a job that stops when told).
"""
