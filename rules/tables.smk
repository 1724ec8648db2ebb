# The paper's Table 1 (base / +RFT / +DPO, one more +DPO row per other run of a chain) and Table 2
# (on- vs off-policy DPO): CSV, Markdown and LaTeX (each model block's best value in bold); with
# rounds or arms also the round table (pass@1 per benchmark, round and arm).


rule make_tables:
    input:
        scores=W.table_scores,
        paper=config["tables"]["paper_results"] or [],
    output:
        **(
            {
                "rounds": report(
                    "results/tables/rounds.csv",
                    caption="../report/rounds.rst",
                    category="Tables",
                    labels={"table": "rounds", "format": "CSV"},
                ),
                "rounds_md": "results/tables/rounds.md",
            }
            if W.rounds_shown
            else {}
        ),
        table1="results/tables/table1.md",
        table2="results/tables/table2.md",
        csv1=report(
            "results/tables/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
            labels={"table": "Table 1", "format": "CSV"},
        ),
        csv2=report(
            "results/tables/table2.csv",
            caption="../report/table2.rst",
            category="Tables",
            labels={"table": "Table 2", "format": "CSV"},
        ),
        tex1=report(
            "results/tables/table1.tex",
            caption="../report/table1.rst",
            category="Tables",
            labels={"table": "Table 1", "format": "LaTeX"},
        ),
        tex2=report(
            "results/tables/table2.tex",
            caption="../report/table2.rst",
            category="Tables",
            labels={"table": "Table 2", "format": "LaTeX"},
        ),
    log:
        "logs/make_tables/tables.log",
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        models=config["tables"]["models"],
        benchmarks=config["tables"]["benchmarks"],
        paper=W.paper_flags,
        flags=W.table_flags,
    shell:
        "codedpo tables --scores {input.scores} --models {params.models} "
        "--benchmarks {params.benchmarks} {params.paper} {params.flags} "
        "--outdir results/tables > {log} 2>&1"
