# Greedy pass@1: one greedy response per benchmark problem, executed in the sandbox, scored.
# With eval.samples_per_problem n > 0 also pass@k: n responses per problem sampled at
# eval.temperature ({variant}/{benchmark}/sampled/), executed the same way ({draw}), scored together.
# A {variant} is base, rft, dpo-{pairs_from} (the paper's run) or {arm}/{recipe}/r{k}/dpo-{policy}.


rule generate_eval:
    input:
        problems=res("problems/{benchmark}.jsonl"),
        model=W.variant_model_input,
    output:
        res("eval/{policy}/{variant}/{benchmark}/samples.jsonl"),
    log:
        logpath("generate_eval/{policy}/{variant}/{benchmark}.log"),
    benchmark:
        benchpath("generate_eval/{policy}/{variant}/{benchmark}.tsv")
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["gpu"]
    threads: config["training"]["threads"]
    resources:
        **W.generation_resources("eval"),
        runtime=lambda wc, attempt: 120 * attempt,
    params:
        model=W.variant_model,
        eval=W.eval_flags(),
        backend=W.generation_flags("eval"),
    shell:
        "codedpo launch -- codedpo sample --model {params.model} --problems {input.problems} "
        "--out {output} --greedy --n 1 {params.eval} {params.backend} "
        "--batch-size {resources.batch_size} --threads {threads} > {log} 2>&1"


rule sample_eval:
    input:
        problems=res("problems/{benchmark}.jsonl"),
        model=W.variant_model_input,
    output:
        res("eval/{policy}/{variant}/{benchmark}/sampled/samples.jsonl"),
    log:
        logpath("sample_eval/{policy}/{variant}/{benchmark}.log"),
    benchmark:
        benchpath("sample_eval/{policy}/{variant}/{benchmark}.tsv")
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["gpu"]
    threads: config["training"]["threads"]
    resources:
        **W.generation_resources("eval"),
        runtime=lambda wc, attempt: 240 * attempt,
    params:
        model=W.variant_model,
        sampling=W.eval_sampling_flags(),
        backend=W.generation_flags("eval"),
    shell:
        "codedpo launch -- codedpo sample --model {params.model} --problems {input.problems} "
        "--out {output} {params.sampling} {params.backend} --batch-size {resources.batch_size} "
        "--threads {threads} > {log} 2>&1"


use rule execute_samples as execute_eval with:
    input:
        problems=res("problems/{benchmark}.jsonl"),
        expected=res("problems/{benchmark}.expected.json"),
        samples=res("eval/{policy}/{variant}/{benchmark}{draw}/samples.jsonl"),
        runtime=W.runtime_input(),
    output:
        ensure(
            res("eval/{policy}/{variant}/{benchmark}{draw}/executions.jsonl"),
            non_empty=True,
        ),
    log:
        logpath("execute_eval/{policy}/{variant}/{benchmark}{draw}.log"),
    benchmark:
        benchpath("execute_eval/{policy}/{variant}/{benchmark}{draw}.tsv")


rule score_eval:
    input:
        problems=res("problems/{benchmark}.jsonl"),
        executions=res("eval/{policy}/{variant}/{benchmark}/executions.jsonl"),
        sampled=W.sampled_executions_input,
    output:
        res("eval/{policy}/{variant}/{benchmark}/scores.json"),
    log:
        logpath("score_eval/{policy}/{variant}/{benchmark}.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        groups=W.groups_flag,
        variant=W.variant_method,
        pairs_from=W.variant_pairs_from,
        flags=W.score_flags,
    shell:
        "codedpo score --problems {input.problems} --executions {input.executions} "
        "--benchmark {wildcards.benchmark} --policy {wildcards.policy} "
        "--variant {params.variant} --pairs-from {params.pairs_from} {params.groups} "
        "{params.flags} --out {output} > {log} 2>&1"
