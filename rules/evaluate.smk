# Greedy pass@1: one greedy response per benchmark problem, executed in the sandbox, scored.
# With eval.samples_per_problem n > 0 also pass@k: n responses per problem sampled at
# eval.temperature ({variant}/{benchmark}/sampled/), executed the same way ({draw}), scored together.
# A {variant} is base, rft, dpo-{pairs_from} (the paper's run) or {arm}/{recipe}/r{k}/dpo-{policy}.


rule generate_eval:
    input:
        problems="results/problems/{benchmark}.jsonl",
        model=variant_model_input,
    output:
        "results/eval/{policy}/{variant}/{benchmark}/samples.jsonl",
    log:
        "logs/generate_eval/{policy}/{variant}/{benchmark}.log",
    benchmark:
        "benchmarks/generate_eval/{policy}/{variant}/{benchmark}.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("gpu")
    threads: torch_threads()
    resources:
        gpu=lambda wc: 0 if is_demo(wc.policy) else generation_gpus("eval"),
        mem_mb=lambda wc, attempt: (
            4000 * attempt if is_demo(wc.policy) else 64000 * attempt
        ),
        runtime=lambda wc, attempt: 120 * attempt,
    params:
        model=variant_model,
        eval=eval_flags(),
        backend=generation_flags("eval"),
    shell:
        "codedpo launch -- codedpo sample --model {params.model} --problems {input.problems} "
        "--out {output} --greedy --n 1 {params.eval} {params.backend} --threads {threads} "
        "> {log} 2>&1"


rule sample_eval:
    input:
        problems="results/problems/{benchmark}.jsonl",
        model=variant_model_input,
    output:
        "results/eval/{policy}/{variant}/{benchmark}/sampled/samples.jsonl",
    log:
        "logs/sample_eval/{policy}/{variant}/{benchmark}.log",
    benchmark:
        "benchmarks/sample_eval/{policy}/{variant}/{benchmark}.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("gpu")
    threads: torch_threads()
    resources:
        gpu=lambda wc: 0 if is_demo(wc.policy) else generation_gpus("eval"),
        mem_mb=lambda wc, attempt: (
            4000 * attempt if is_demo(wc.policy) else 64000 * attempt
        ),
        runtime=lambda wc, attempt: 240 * attempt,
    params:
        model=variant_model,
        sampling=eval_sampling_flags(),
        backend=generation_flags("eval"),
    shell:
        "codedpo launch -- codedpo sample --model {params.model} --problems {input.problems} "
        "--out {output} {params.sampling} {params.backend} --threads {threads} > {log} 2>&1"


rule execute_eval:
    input:
        problems="results/problems/{benchmark}.jsonl",
        expected="results/problems/{benchmark}.expected.json",
        samples="results/eval/{policy}/{variant}/{benchmark}{draw}/samples.jsonl",
        runtime=runtime_input(),
    output:
        ensure(
            "results/eval/{policy}/{variant}/{benchmark}{draw}/executions.jsonl",
            non_empty=True,
        ),
    log:
        "logs/execute_eval/{policy}/{variant}/{benchmark}{draw}.log",
    benchmark:
        "benchmarks/execute_eval/{policy}/{variant}/{benchmark}{draw}.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("cpu")
    threads: config["execution"]["workers"]
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 60 * attempt,
    params:
        execution=execution_flags(config["execution"]),
        runtime=runtime_flag(),
    shell:
        "codedpo launch -- codedpo execute --problems {input.problems} "
        "--expected {input.expected} --samples {input.samples} --out {output} "
        "{params.execution} {params.runtime} --workers {threads} --no-progress > {log} 2>&1"


rule score_eval:
    input:
        problems="results/problems/{benchmark}.jsonl",
        executions="results/eval/{policy}/{variant}/{benchmark}/executions.jsonl",
        sampled=sampled_executions_input,
    output:
        "results/eval/{policy}/{variant}/{benchmark}/scores.json",
    log:
        "logs/score_eval/{policy}/{variant}/{benchmark}.log",
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("cpu")
    params:
        groups=lambda wc: groups_flag(wc.benchmark),
        variant=variant_method,
        pairs_from=variant_pairs_from,
        flags=score_flags,
    shell:
        "codedpo score --problems {input.problems} --executions {input.executions} "
        "--benchmark {wildcards.benchmark} --policy {wildcards.policy} "
        "--variant {params.variant} --pairs-from {params.pairs_from} {params.groups} "
        "{params.flags} --out {output} > {log} 2>&1"
