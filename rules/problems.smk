# Problem sets normalized into the problems JSONL, and the expected outputs that the executor
# computes once from reference solutions (inside the sandbox) where a source gives none.


rule prepare_train_problems:
    input:
        source=config["train_problems"]["path"],
        template=template_input(config["train_problems"]),
    output:
        "results/problems/train.unfiltered.jsonl",
    log:
        "logs/prepare_problems/train.log",
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("cpu")
    params:
        split=split_flag(config["train_problems"].get("split")),
        format=config["train_problems"].get("format", "problems"),
        template=template_flag(config["train_problems"]),
    shell:
        "codedpo prepare --source {input.source} --format {params.format} "
        "{params.split} {params.template} --out {output} > {log} 2>&1"


rule filter_train_problems:
    input:
        problems="results/problems/train.unfiltered.jsonl",
        benchmarks=expand("results/problems/{benchmark}.jsonl", benchmark=BENCHMARKS),
    output:
        problems="results/problems/train.jsonl",
        report="results/problems/train.filter_report.json",
    log:
        "logs/filter_train_problems/train.log",
    benchmark:
        "benchmarks/filter_train_problems/train.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("cpu")
    threads: config.get("execution", {}).get("workers", 2)
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        filters=config.get("train_filters", {}),
        execution=execution_flags(config.get("execution", {})),
    shell:
        "codedpo filter --problems {input.problems} --benchmarks {input.benchmarks} "
        "--out {output.problems} --report {output.report} "
        "--ngram {params.filters[ngram]} --threshold {params.filters[threshold]} "
        "{params.execution} --no-progress > {log} 2>&1"


rule prepare_benchmark:
    input:
        source=lambda wc: config["benchmarks"][wc.benchmark]["path"],
        template=lambda wc: template_input(config["benchmarks"][wc.benchmark]),
    output:
        "results/problems/{benchmark}.jsonl",
    log:
        "logs/prepare_problems/{benchmark}.log",
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("cpu")
    params:
        split=lambda wc: split_flag(config["benchmarks"][wc.benchmark].get("split")),
        format=lambda wc: config["benchmarks"][wc.benchmark].get("format", "problems"),
        template=lambda wc: template_flag(config["benchmarks"][wc.benchmark]),
    shell:
        "codedpo prepare --source {input.source} --format {params.format} "
        "{params.split} {params.template} --out {output} > {log} 2>&1"


rule compute_expected:
    input:
        "results/problems/{name}.jsonl",
    output:
        "results/problems/{name}.expected.json",
    log:
        "logs/compute_expected/{name}.log",
    benchmark:
        "benchmarks/compute_expected/{name}.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("cpu")
    threads: config.get("execution", {}).get("workers", 2)
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        execution=execution_flags(config.get("execution", {})),
    shell:
        "codedpo execute --problems {input} --expected {output} --expected-only "
        "{params.execution} --no-progress > {log} 2>&1"


rule download_benchmark:
    output:
        "resources/benchmarks/{file}",
    log:
        "logs/download_benchmark/{file}.log",
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("cpu")
    params:
        name=lambda wc: wc.file,
    shell:
        "codedpo download --name {params.name} --out {output} > {log} 2>&1"
