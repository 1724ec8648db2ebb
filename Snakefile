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
        "results/tables/table1.md",
        "results/tables/table2.md",
        expand("results/pairs/{policy}/stats.json", policy=list(config["models"])),
        "results/tables/table1.tex",
        "results/tables/table2.tex",
        "results/plots/pass_at_1.png",
        "results/plots/pass_histogram.png",
        "results/plots/verdicts.png",
        expand(
            "results/analysis/{policy}/reward_summary.json",
            policy=list(config["models"]),
        ),
        # rounds or arms: the round table and plot; tables.hack_report: the hack report
        (
            ["results/tables/rounds.md", "results/plots/rounds.png"]
            if W.rounds_shown
            else []
        ),
        (
            ["results/tables/hacks.md", "results/plots/hacks.png"]
            if config["tables"]["hack_report"]
            else []
        ),
        # grpo.arms: Table 3 (every method with its budget), its plot, the GRPO curves
        (
            [
                "results/tables/table3.md",
                "results/plots/budget.png",
                "results/plots/grpo_curves.png",
            ]
            if W.grpo_shown
            else []
        ),
