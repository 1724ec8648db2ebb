# Preference pairs (chosen passes every test, rejected fails; one random pair per problem) and
# the RFT set (every passing response), with statistics.


rule build_pairs:
    input:
        problems="results/problems/train.jsonl",
        samples=expand("results/samples/{{policy}}/shard{shard}.jsonl", shard=SHARDS),
        executions=expand(
            "results/executions/{{policy}}/shard{shard}.jsonl", shard=SHARDS
        ),
    output:
        pairs="results/pairs/{policy}/pairs.jsonl",
        rft="results/pairs/{policy}/rft.jsonl",
        stats="results/pairs/{policy}/stats.json",
    log:
        "logs/build_pairs/{policy}.log",
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("cpu")
    params:
        pairs=pairs_flags(),
    shell:
        "codedpo build-pairs --problems {input.problems} --samples {input.samples} "
        "--executions {input.executions} --out-pairs {output.pairs} --out-rft {output.rft} "
        "--out-stats {output.stats} {params.pairs} > {log} 2>&1"
