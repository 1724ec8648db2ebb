# DPO and the RFT baseline through TRL, launched with accelerate (configs/accelerate/*.yaml).
# Checkpoints are not protected(): a changed hyperparameter must be able to replace them.
# Round k of a chain ({chain}: /{arm}/{recipe}/r{k}) trains from round k-1's checkpoint on its
# own pairs; the paper's run is results/checkpoints/{policy}/dpo-{pairs_from}.


rule train_dpo:
    input:
        pairs=run_pairs,
        model=start_model_input,
        ref=reference_input,
        recipe=lambda wc: run_of(wc)[0].recipe_path,
        accelerate=config["training"]["accelerate_config"],
    output:
        directory("results/checkpoints/{policy}{chain}/dpo-{pairs_from}"),
    log:
        "logs/train_dpo/{policy}{chain}/dpo-{pairs_from}.log",
    benchmark:
        "benchmarks/train_dpo/{policy}{chain}/dpo-{pairs_from}.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("gpu")
    threads: training_cpus
    resources:
        gpu=training_gpus,
        mem_mb=training_mem_mb,
        cpus_per_task=training_cpus,
        runtime=lambda wc, attempt: 240 * attempt,
        torch_threads=torch_threads(),
    params:
        model=start_model_ref,
        overrides=dpo_flags,
        processes=config["training"]["num_processes"],
    shell:
        "codedpo launch -- accelerate launch --config_file {input.accelerate} "
        "--num_processes {params.processes} -m codedpo.train --config {input.recipe} "
        "--method dpo --model_name_or_path {params.model} --train_file {input.pairs} "
        "--output_dir {output} --threads {resources.torch_threads} {params.overrides} "
        "> {log} 2>&1"


rule train_rft:
    input:
        rft="results/pairs/{policy}/rft.jsonl",
        model=lambda wc: base_model_input(wc.policy),
        recipe=config["rft"]["recipe"],
        accelerate=config["training"]["accelerate_config"],
    output:
        directory("results/checkpoints/{policy}/rft"),
    log:
        "logs/train_rft/{policy}/rft.log",
    benchmark:
        "benchmarks/train_rft/{policy}/rft.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("gpu")
    threads: training_cpus
    resources:
        gpu=training_gpus,
        mem_mb=training_mem_mb,
        cpus_per_task=training_cpus,
        runtime=lambda wc, attempt: 240 * attempt,
        torch_threads=torch_threads(),
    params:
        model=lambda wc: base_model_ref(wc.policy),
        overrides=train_flags("rft"),
        processes=config["training"]["num_processes"],
    shell:
        "codedpo launch -- accelerate launch --config_file {input.accelerate} "
        "--num_processes {params.processes} -m codedpo.train --config {input.recipe} "
        "--method rft --model_name_or_path {params.model} --train_file {input.rft} "
        "--output_dir {output} --threads {resources.torch_threads} {params.overrides} "
        "> {log} 2>&1"
