# codedpo: on-policy samples -> sandboxed execution -> preference pairs -> DPO / RFT -> pass@1.
# Miao et al. (2024), "Aligning CodeLLMs with Direct Preference Optimization".
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/problems.smk"
include: "rules/sample.smk"
include: "rules/execute.smk"
include: "rules/pairs.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/tables.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        res("tables/table1.md"),
        res("tables/table2.md"),
        expand(res("pairs/{policy}/stats.json"), policy=list(config["models"])),
        res("tables/table1.tex"),
        res("tables/table2.tex"),
        res("plots/pass_at_1.png"),
        res("plots/pass_histogram.png"),
        res("plots/verdicts.png"),
        res("plots/training_curves.png"),
        expand(
            res("analysis/{policy}/reward_summary.json"),
            policy=list(config["models"]),
        ),
        # rounds or arms: the round table and plot; tables.hack_report: the hack report
        ([res("tables/rounds.md"), res("plots/rounds.png")] if W.rounds_shown else []),
        (
            [res("tables/hacks.md"), res("plots/hacks.png")]
            if config["tables"]["hack_report"]
            else []
        ),
        # grpo.arms: Table 3 (every method with its budget), its plot, the GRPO curves
        (
            [
                res("tables/table3.md"),
                res("plots/budget.png"),
                res("plots/grpo_curves.png"),
            ]
            if W.grpo_shown
            else []
        ),
