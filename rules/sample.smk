# On-policy sampling: n responses per training problem from the policy itself, through its own
# chat template, sharded over problems (per-sample seeds: sharding does not change the samples).
# Round 1 samples the original model (results/samples/{policy}/, shared by every arm); round k of
# a chain samples its round k-1 checkpoint ({chain}: /{arm}/{recipe}/r{k}).


rule sample_responses:
    input:
        problems=round_problems,
        model=sampling_model_input,
    output:
        "results/samples/{policy}{chain}/shard{shard}.jsonl",
    log:
        "logs/sample_responses/{policy}{chain}/shard{shard}.log",
    benchmark:
        "benchmarks/sample_responses/{policy}{chain}/shard{shard}.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("gpu")
    threads: torch_threads()
    resources:
        gpu=lambda wc: 0 if is_demo(wc.policy) else generation_gpus("sampling"),
        mem_mb=lambda wc, attempt: (
            4000 * attempt if is_demo(wc.policy) else 64000 * attempt
        ),
        runtime=lambda wc, attempt: 120 * attempt,
    params:
        model=start_model_ref,
        sampling=sampling_flags(),
        backend=generation_flags("sampling"),
    shell:
        "codedpo launch -- codedpo sample --model {params.model} --problems {input.problems} "
        "--out {output} --shard {wildcards.shard} {params.sampling} {params.backend} "
        "--threads {threads} > {log} 2>&1"
