"""The workflow's own logic: the checked config, chains of rounds, rule flags and paths, jobs.

- :mod:`~codedpo.workflow.config`: the config checked at parse time (``snakemake -n`` included);
- :mod:`~codedpo.workflow.chains`: arms, recipes and rounds as chains;
- :mod:`~codedpo.workflow.runs`: where each run of a chain lives (paths, the ``{chain}``
  wildcard, eval variants, Table 2's off-policy runs);
- :mod:`~codedpo.workflow.flags`: the ``codedpo`` commands' flags, in one spelling per value;
- :mod:`~codedpo.workflow.resources`: GPUs, memory and CPUs of a job, by model and attempt;
- :mod:`~codedpo.workflow.jobs`: ``Workflow``, what each rule's jobs get (``rules/*.smk`` call it),
  with the GRPO arms' and budgets' part in :mod:`~codedpo.workflow.online_jobs`;
- :mod:`~codedpo.workflow.profile`: the check that a cluster profile's placeholders were edited;
- :mod:`~codedpo.workflow.launch`: ``codedpo launch`` (a job that stops when told).
"""
