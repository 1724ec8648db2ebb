"""codedpo: align code LLMs with execution feedback (Miao et al., 2024) as a Snakemake workflow.

The package mirrors the pipeline. Each stage is one subpackage, named as its rules file and its
``codedpo`` verbs are; a stage imports only the stages above it in this list and the shared
helpers (``tests/test_layout.py`` checks it)::

    package          rules file                 codedpo verbs
    ---------------  -------------------------  ---------------------------------------------
    io, records      (shared helpers: files; statuses, the reward table, the sample/execution join)
    problems/        rules/problems.smk         prepare, export-source, download, slice-problems
    models/          rules/models.smk           build-demo-model
    sampling/        rules/sample.smk           sample, extract
    execution/       rules/execute.smk          execute, filter, runtime
      sandbox/       (runs inside the sandbox: standard library only, loaded by path)
    pairs/           rules/pairs.smk            build-pairs
    training/        rules/train.smk            train
    evaluation/      rules/evaluate.smk         score, verdicts
    reporting/       rules/tables.smk,          tables, table3, budget, plot, hack-report,
                     rules/report.smk           analyze-rewards
    workflow/        rules/common.smk           launch (and every rule's inputs, params and
                                                resources: ``W`` in rules/common.smk)
    cli              (the ``codedpo`` command: one verb per stage's command)

Two rules run the executor before sampling: ``compute_expected`` (``codedpo execute
--expected-only``) and ``filter_train_problems`` (``codedpo filter``) live in
``rules/problems.smk`` because they make problem files, and call :mod:`codedpo.execution`.
The problems file's values are encoded with :mod:`codedpo.execution.sandbox.codec`, the wire
format both sides of the sandbox share: the one module of a later stage that earlier ones import
(it imports nothing of ours).
"""
