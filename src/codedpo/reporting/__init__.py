"""The paper's tables, the figures and the analyses, from score and pair files.

- :mod:`~codedpo.reporting.make_tables`: ``codedpo tables`` (the tables below, from score files);
- :mod:`~codedpo.reporting.tables`: Table 1 and Table 2, with paired differences to the base;
- :mod:`~codedpo.reporting.rounds_table`: the round table of iterative DPO;
- :mod:`~codedpo.reporting.table_format`: Markdown and LaTeX renderings;
- :mod:`~codedpo.reporting.significance`: McNemar's test and the bootstrap;
- :mod:`~codedpo.reporting.paper_results`: the paper's own numbers beside ours;
- :mod:`~codedpo.reporting.plots`: ``codedpo plot``;
- :mod:`~codedpo.reporting.hack_report`: ``codedpo hack-report``;
- :mod:`~codedpo.reporting.implicit_reward`: ``codedpo analyze-rewards`` (the paper's Figure 1).
"""
