# Sandboxed execution of every sample; the trusted side decides each verdict.


rule execute_samples:
    input:
        problems=res("problems/train.jsonl"),
        expected=res("problems/train.expected.json"),
        samples=res("samples/{policy}{chain}/shard{shard}.jsonl"),
        runtime=W.runtime_input(),
    output:
        ensure(res("executions/{policy}{chain}/shard{shard}.jsonl"), non_empty=True),
    log:
        logpath("execute_samples/{policy}{chain}/shard{shard}.log"),
    benchmark:
        benchpath("execute_samples/{policy}{chain}/shard{shard}.tsv")
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
