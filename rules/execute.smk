# Sandboxed execution of every sample; the trusted side decides each verdict.


rule execute_samples:
    input:
        problems="results/problems/train.jsonl",
        expected="results/problems/train.expected.json",
        samples="results/samples/{policy}{chain}/shard{shard}.jsonl",
        runtime=W.runtime_input(),
    output:
        ensure("results/executions/{policy}{chain}/shard{shard}.jsonl", non_empty=True),
    log:
        "logs/execute_samples/{policy}{chain}/shard{shard}.log",
    benchmark:
        "benchmarks/execute_samples/{policy}{chain}/shard{shard}.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    threads: config["execution"]["workers"]
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
    params:
        execution=W.execution_flags(),
        runtime=W.runtime_flag(),
    shell:
        "codedpo launch -- codedpo execute --problems {input.problems} "
        "--expected {input.expected} --samples {input.samples} --out {output} "
        "{params.execution} {params.runtime} --workers {threads} --no-progress > {log} 2>&1"
