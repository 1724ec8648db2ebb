# DPO and the RFT baseline through TRL, launched with accelerate (configs/accelerate/*.yaml).
# Checkpoints are not protected(): a changed hyperparameter must be able to replace them.
# Round k of a chain ({chain}: /{arm}/{recipe}/r{k}) trains from round k-1's checkpoint on its
# own pairs; the paper's run is results/checkpoints/{policy}/dpo-{pairs_from}.


rule train_dpo:
    input:
        train=W.run_pairs,
        model=W.start_model_input,
        ref=W.reference_input,
        recipe=W.dpo_recipe,
        accelerate=config["training"]["accelerate_config"],
    output:
        directory(res("checkpoints/{policy}{chain}/dpo-{pairs_from}")),
    log:
        logpath("train_dpo/{policy}{chain}/dpo-{pairs_from}.log"),
    benchmark:
        benchpath("train_dpo/{policy}{chain}/dpo-{pairs_from}.tsv")
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["gpu"]
    threads: W.training_cpus
    resources:
        gpu=W.training_gpus,
        mem_mb=W.training_mem_mb,
        cpus_per_task=W.training_cpus,
        runtime=lambda wc, attempt: 240 * attempt,
        torch_threads=config["training"]["threads"],
    params:
        method="dpo",
        model=W.start_model_ref,
        overrides=W.dpo_flags,
        processes=config["training"]["num_processes"],
    shell:
        "codedpo launch -- accelerate launch --config_file {input.accelerate} "
        "--num_processes {params.processes} -m codedpo train --config {input.recipe} "
        "--method {params.method} --model_name_or_path {params.model} "
        "--train_file {input.train} --output_dir {output} "
        "--threads {resources.torch_threads} {params.overrides} > {log} 2>&1"


# RFT: SFT of the original model on the passing responses of the paper's samples.
use rule train_dpo as train_rft with:
    input:
        train=res("pairs/{policy}/rft.jsonl"),
        model=W.base_model_input,
        recipe=config["rft"]["recipe"],
        accelerate=config["training"]["accelerate_config"],
    output:
        directory(res("checkpoints/{policy}/rft")),
    log:
        logpath("train_rft/{policy}/rft.log"),
    benchmark:
        benchpath("train_rft/{policy}/rft.tsv")
    params:
        method="rft",
        model=W.base_model_ref,
        overrides=W.train_flags("rft"),


# GRPO (the online-RL arms, grpo.arms): TRL's GRPOTrainer from the original model on the training
# problems, rewarded in the job by the sandboxed executor with the config's execution settings
# (codedpo.workflow.online); its rollouts.jsonl and budget are in the checkpoint.
use rule train_dpo as train_grpo with:
    input:
        train=res("problems/train.jsonl"),
        expected=res("problems/train.expected.json"),
        runtime=W.runtime_input(),
        model=W.base_model_input,
        recipe=W.grpo_recipe,
        accelerate=config["training"]["accelerate_config"],
    output:
        directory(res("checkpoints/{policy}/grpo-{grpo_arm}")),
    log:
        logpath("train_grpo/{policy}/grpo-{grpo_arm}.log"),
    benchmark:
        benchpath("train_grpo/{policy}/grpo-{grpo_arm}.tsv")
    threads: W.grpo_cpus
    resources:
        gpu=W.training_gpus,
        mem_mb=W.training_mem_mb,
        cpus_per_task=W.grpo_cpus,
        runtime=lambda wc, attempt: 240 * attempt,
        torch_threads=config["training"]["threads"],
    params:
        method="grpo",
        model=W.base_model_ref,
        overrides=W.grpo_flags,
        processes=config["training"]["num_processes"],
