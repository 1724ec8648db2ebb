# Preference pairs (chosen passes every test, rejected fails; one random pair per problem: the
# paper's strategy, or pairs.strategy) and the RFT set (every passing response), with statistics;
# one set per run of each chain ({chain}), the paper's at results/pairs/{policy}/.


rule build_pairs:
    input:
        problems=W.round_problems,
        samples=W.run_samples,
        executions=W.run_executions,
    output:
        pairs=res("pairs/{policy}{chain}/pairs.jsonl"),
        rft=res("pairs/{policy}{chain}/rft.jsonl"),
        stats=res("pairs/{policy}{chain}/stats.json"),
    log:
        logpath("build_pairs/{policy}{chain}.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        pairs=W.pairs_flags,
    shell:
        "codedpo build-pairs --problems {input.problems} --samples {input.samples} "
        "--executions {input.executions} --out-pairs {output.pairs} --out-rft {output.rft} "
        "--out-stats {output.stats} {params.pairs} > {log} 2>&1"
