# On-policy sampling: n responses per training problem from the policy itself, through its own
# chat template, sharded over problems (per-sample seeds: sharding does not change the samples).
# Round 1 samples the original model (results/samples/{policy}/, shared by every arm); round k of
# a chain samples its round k-1 checkpoint ({chain}: /{arm}/{recipe}/r{k}).


rule sample_responses:
    input:
        problems=W.round_problems,
        model=W.sampling_model_input,
    output:
        res("samples/{policy}{chain}/shard{shard}.jsonl"),
    log:
        logpath("sample_responses/{policy}{chain}/shard{shard}.log"),
    benchmark:
        benchpath("sample_responses/{policy}{chain}/shard{shard}.tsv")
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["gpu"]
    threads: config["training"]["threads"]
    resources:
        **W.generation_resources("sampling"),
        runtime=lambda wc, attempt: 120 * attempt,
    params:
        model=W.start_model_ref,
        sampling=W.sampling_flags(),
        backend=W.generation_flags("sampling"),
    shell:
        "codedpo launch -- codedpo sample --model {params.model} --problems {input.problems} "
        "--out {output} --shard {wildcards.shard} {params.sampling} {params.backend} "
        "--batch-size {resources.batch_size} --threads {threads} > {log} 2>&1"
