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
                    res("tables/rounds.csv"),
                    caption="../report/rounds.rst",
                    category="Tables",
                    labels={"table": "rounds", "format": "CSV"},
                ),
                "rounds_md": res("tables/rounds.md"),
            }
            if W.rounds_shown
            else {}
        ),
        table1=res("tables/table1.md"),
        table2=res("tables/table2.md"),
        csv1=report(
            res("tables/table1.csv"),
            caption="../report/table1.rst",
            category="Tables",
            labels={"table": "Table 1", "format": "CSV"},
        ),
        csv2=report(
            res("tables/table2.csv"),
            caption="../report/table2.rst",
            category="Tables",
            labels={"table": "Table 2", "format": "CSV"},
        ),
        tex1=report(
            res("tables/table1.tex"),
            caption="../report/table1.rst",
            category="Tables",
            labels={"table": "Table 1", "format": "LaTeX"},
        ),
        tex2=report(
            res("tables/table2.tex"),
            caption="../report/table2.rst",
            category="Tables",
            labels={"table": "Table 2", "format": "LaTeX"},
        ),
    log:
        logpath("make_tables/tables.log"),
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
        outdir=lambda wc, output: os.path.dirname(output.table1),
    shell:
        "codedpo tables --scores {input.scores} --models {params.models} "
        "--benchmarks {params.benchmarks} {params.paper} {params.flags} "
        "--outdir {params.outdir} > {log} 2>&1"


# What each evaluated variant cost (codedpo.reporting.budget): responses and tokens generated,
# executor and training seconds, GPU hours; cumulative over a chain's rounds.
rule count_budget:
    input:
        unpack(W.budget_inputs),
    output:
        res("budget/{policy}/{variant}.json"),
    log:
        logpath("count_budget/{policy}/{variant}.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        identity=W.budget_flags,
        summaries=lambda wc, input: [
            f"{c}/train_summary.json" for c in input.checkpoints
        ],
    shell:
        "codedpo budget --policy {wildcards.policy} {params.identity} "
        "--samples {input.samples} --executions {input.executions} "
        "--train-summaries {params.summaries} --out {output} > {log} 2>&1"


# Table 3 (grpo.arms): base vs RFT vs DPO (every round and arm) vs GRPO (every arm), with the
# differences to the base model and to DPO and what each row cost; the plot of pass@1 against
# responses generated (codedpo.reporting.table3).
rule make_table3:
    input:
        scores=W.table_scores,
        budgets=W.table3_budgets,
    output:
        md=res("tables/table3.md"),
        csv=report(
            res("tables/table3.csv"),
            caption="../report/table3.rst",
            category="Tables",
            labels={"table": "Table 3", "format": "CSV"},
        ),
        tex=report(
            res("tables/table3.tex"),
            caption="../report/table3.rst",
            category="Tables",
            labels={"table": "Table 3", "format": "LaTeX"},
        ),
        plot=report(
            res("plots/budget.png"),
            caption="../report/budget.rst",
            category="Figures",
            labels={"figure": "pass@1 against responses generated"},
        ),
    log:
        logpath("make_table3/table3.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        models=config["tables"]["models"],
        benchmarks=config["tables"]["benchmarks"],
        bootstrap=W.bootstrap_flags,
        note=W.grpo_budget_note,
        released=W.released_flags,
        outdir=lambda wc, output: os.path.dirname(output.md),
    shell:
        "codedpo table3 --scores {input.scores} --budgets {input.budgets} "
        "--models {params.models} --benchmarks {params.benchmarks} {params.bootstrap} "
        "--budget-note {params.note} {params.released} --outdir {params.outdir} "
        "--plot {output.plot} > {log} 2>&1"
