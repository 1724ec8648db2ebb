# On-policy sampling: n responses per training problem from the policy itself, through its own
# chat template, sharded over problems (per-sample seeds: sharding does not change the samples).


rule sample_responses:
    input:
        problems="results/problems/train.jsonl",
        model=lambda wc: base_model_input(wc.policy),
    output:
        "results/samples/{policy}/shard{shard}.jsonl",
    log:
        "logs/sample_responses/{policy}/shard{shard}.log",
    benchmark:
        "benchmarks/sample_responses/{policy}/shard{shard}.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("gpu")
    resources:
        gpu=lambda wc: 0 if is_demo(wc.policy) else generation_gpus("sampling"),
        mem_mb=lambda wc, attempt: (
            4000 * attempt if is_demo(wc.policy) else 64000 * attempt
        ),
        runtime=lambda wc, attempt: 120 * attempt,
    params:
        model=lambda wc: base_model_ref(wc.policy),
        sampling=config["sampling"],
        shards=config["sampling"]["shards"],
        threads=config["training"].get("threads", 1),
        backend=generation_flags("sampling"),
    shell:
        "codedpo sample --model {params.model} --problems {input.problems} --out {output} "
        "--shard {wildcards.shard} --num-shards {params.shards} "
        "--n {params.sampling[n]} --temperature {params.sampling[temperature]} "
        "--top-p {params.sampling[top_p]} --max-new-tokens {params.sampling[max_new_tokens]} "
        "--seed {params.sampling[seed]} --batch-size {params.sampling[batch_size]} "
        "--threads {params.threads} {params.backend} > {log} 2>&1"
