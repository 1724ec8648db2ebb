# Figures and the implicit-reward analysis (the paper's Figure 1 and Appendix A), all marked for
# `snakemake --report report.html`; the captions are report/*.rst.


report: "../report/workflow.rst"


rule plot_pass_at_1:
    input:
        rules.make_tables.input.scores,
    output:
        report(
            res("plots/pass_at_1.png"),
            caption="../report/pass_at_1.rst",
            category="Figures",
            labels={"figure": "greedy pass@1"},
        ),
    log:
        logpath("plot_pass_at_1/pass_at_1.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        models=config["tables"]["models"],
        benchmarks=config["tables"]["benchmarks"],
    shell:
        "codedpo plot pass-at-1 --scores {input} --models {params.models} "
        "--benchmarks {params.benchmarks} --out {output} > {log} 2>&1"


rule plot_rounds:
    input:
        rules.make_tables.input.scores,
    output:
        report(
            res("plots/rounds.png"),
            caption="../report/rounds.rst",
            category="Figures",
            labels={"figure": "pass@1 per round"},
        ),
    log:
        logpath("plot_rounds/rounds.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        models=config["tables"]["models"],
        benchmarks=config["tables"]["benchmarks"],
    shell:
        "codedpo plot rounds --scores {input} --models {params.models} "
        "--benchmarks {params.benchmarks} --out {output} > {log} 2>&1"


# What the sandbox saw of every run's samples (codedpo.execution.hacks): counts per hack class, per policy
# and round, and the hack rate per round; a GRPO run's row counts its rollouts (its train_summary.json).
rule hack_report:
    input:
        stats=W.hack_report_stats(),
        grpo=W.grpo_checkpoints(),
    output:
        md=res("tables/hacks.md"),
        csv=report(
            res("tables/hacks.csv"),
            caption="../report/hacks.rst",
            category="Tables",
            labels={"table": "reward hacking", "format": "CSV"},
        ),
        plot=report(
            res("plots/hacks.png"),
            caption="../report/hacks.rst",
            category="Figures",
            labels={"figure": "hack rate per round"},
        ),
    log:
        logpath("hack_report/hacks.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        # the pairs' stats, then each GRPO run's summary (its rollouts' hack classes)
        stats=lambda wc, input: [
            *input.stats,
            *(f"{c}/train_summary.json" for c in input.grpo),
        ],
        labels=W.hack_report_labels(),
    shell:
        "codedpo hack-report --stats {params.stats} --labels {params.labels} "
        "--out-md {output.md} --out-csv {output.csv} --out-plot {output.plot} > {log} 2>&1"


rule plot_pass_histogram:
    input:
        expand(res("pairs/{policy}/stats.json"), policy=W.models),
    output:
        report(
            res("plots/pass_histogram.png"),
            caption="../report/pass_histogram.rst",
            category="Figures",
            labels={"figure": "per-problem pass rate of the samples"},
        ),
    log:
        logpath("plot_pass_histogram/pass_histogram.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        policies=W.models,
    shell:
        "codedpo plot pass-histogram --stats {input} --policies {params.policies} "
        "--out {output} > {log} 2>&1"


rule plot_verdicts:
    input:
        expand(res("pairs/{policy}/stats.json"), policy=W.models),
    output:
        report(
            res("plots/verdicts.png"),
            caption="../report/verdicts.rst",
            category="Figures",
            labels={"figure": "verdicts of the samples"},
        ),
    log:
        logpath("plot_verdicts/verdicts.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        policies=W.models,
    shell:
        "codedpo plot verdicts --stats {input} --policies {params.policies} "
        "--out {output} > {log} 2>&1"


# beta and max_length are the ones the checkpoint was trained with (its train_summary.json), so
# a new DPO beta retrains the checkpoint and this rule follows it.
rule analyze_implicit_reward:
    input:
        problems=res("problems/train.jsonl"),
        samples=expand(res("samples/{{policy}}/shard{shard}.jsonl"), shard=W.shards),
        executions=expand(
            res("executions/{{policy}}/shard{shard}.jsonl"), shard=W.shards
        ),
        pairs=res("pairs/{policy}/pairs.jsonl"),
        policy_model=res("checkpoints/{policy}/dpo-{policy}"),
        ref_model=W.base_model_input,
    output:
        responses=report(
            res("analysis/{policy}/implicit_rewards.csv"),
            caption="../report/implicit_rewards.rst",
            category="Implicit reward",
            subcategory="{policy}",
            labels={"policy": "{policy}", "file": "per-response rewards"},
        ),
        pairs=report(
            res("analysis/{policy}/reward_pairs.csv"),
            caption="../report/reward_pairs.rst",
            category="Implicit reward",
            subcategory="{policy}",
            labels={"policy": "{policy}", "file": "pairwise reward differences"},
        ),
        summary=report(
            res("analysis/{policy}/reward_summary.json"),
            caption="../report/reward_summary.rst",
            category="Implicit reward",
            subcategory="{policy}",
            labels={"policy": "{policy}", "file": "summary statistics"},
        ),
        figure=report(
            res("analysis/{policy}/reward_differences.png"),
            caption="../report/reward_differences.rst",
            category="Implicit reward",
            subcategory="{policy}",
            labels={"policy": "{policy}", "file": "Figure 1: reward differences"},
        ),
    log:
        logpath("analyze_implicit_reward/{policy}.log"),
    benchmark:
        benchpath("analyze_implicit_reward/{policy}.tsv")
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["gpu"]
    threads: config["training"]["threads"]
    resources:
        gpu=W.analysis_gpus,
        mem_mb=W.model_mem_mb,
        runtime=lambda wc, attempt: 60 * attempt,
    params:
        ref_model=W.base_model_ref,
        batch_size=config["analysis"]["batch_size"],
    shell:
        "codedpo launch -- codedpo analyze-rewards --problems {input.problems} "
        "--samples {input.samples} "
        "--executions {input.executions} --train-pairs {input.pairs} "
        "--policy-model {input.policy_model} --ref-model {params.ref_model} "
        "--batch-size {params.batch_size} --threads {threads} "
        "--label {wildcards.policy} --out-responses {output.responses} "
        "--out-pairs {output.pairs} --out-summary {output.summary} "
        "--out-figure {output.figure} > {log} 2>&1"


# The training curves of every trained run (loss, reward margin, learning rate per logged step),
# from the log history each checkpoint's train_summary.json keeps; TensorBoard's full logs are
# under the experiment's logs/tracking/ when training.report_to names it.
rule plot_training_curves:
    input:
        W.trained_checkpoints,
    output:
        plot=report(
            res("plots/training_curves.png"),
            caption="../report/training_curves.rst",
            category="Figures",
            labels={"figure": "training curves"},
        ),
        csv=res("tables/training_curves.csv"),
    log:
        logpath("plot_training_curves/training_curves.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        summaries=lambda wc, input: [f"{c}/train_summary.json" for c in input],
        labels=W.trained_labels,
        tracking=logpath("tracking"),  # named in the report's caption
    shell:
        "codedpo plot training-curves --summaries {params.summaries} --labels {params.labels} "
        "--out {output.plot} --out-csv {output.csv} > {log} 2>&1"


# The reward and pass-rate curves of every GRPO run, per optimizer step, from its rollouts.
rule plot_grpo_curves:
    input:
        W.grpo_checkpoints,
    output:
        plot=report(
            res("plots/grpo_curves.png"),
            caption="../report/grpo_curves.rst",
            category="Figures",
            labels={"figure": "GRPO reward and pass rate per step"},
        ),
        csv=res("tables/grpo_curves.csv"),
    log:
        logpath("plot_grpo_curves/grpo_curves.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        rollouts=lambda wc, input: [f"{c}/rollouts.jsonl" for c in input],
        labels=W.grpo_labels,
        rewards=W.grpo_rewards,
    shell:
        "codedpo plot grpo-curves --rollouts {params.rollouts} --labels {params.labels} "
        "--rewards {params.rewards} --out {output.plot} --out-csv {output.csv} > {log} 2>&1"
