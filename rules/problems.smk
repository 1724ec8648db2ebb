# Problem sets normalized into the problems JSONL, and the expected outputs that the executor
# computes once from reference solutions (inside the sandbox) where a source gives none.


rule prepare_train_source:
    input:
        source=lambda wc: TRAIN_SOURCES[wc.source]["path"],
        template=lambda wc: template_input(TRAIN_SOURCES[wc.source]),
    output:
        "results/problems/train_sources/{source}.jsonl",
    log:
        "logs/prepare_problems/train_sources/{source}.log",
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("cpu")
    params:
        split=lambda wc: split_flag(TRAIN_SOURCES[wc.source].get("split")),
        format=lambda wc: TRAIN_SOURCES[wc.source].get("format", "problems"),
        template=lambda wc: template_flag(TRAIN_SOURCES[wc.source]),
        subset=lambda wc: subset_flags(TRAIN_SOURCES[wc.source]),
    shell:
        "codedpo prepare --source {input.source} --format {params.format} "
        "{params.split} {params.template} {params.subset} --out {output} > {log} 2>&1"


# A training source's file exported from the Hugging Face Hub when it is not there yet (needs
# internet: run it on a login node, or copy the file in, before submitting to compute nodes).
rule export_train_source:
    output:
        "resources/train_sources/{file}",
    log:
        "logs/export_train_source/{file}.log",
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("cpu")
    params:
        export=export_flags,
    shell:
        "python -m codedpo.sources {params.export} --out {output} > {log} 2>&1"


rule filter_train_problems:
    input:
        problems=expand(
            "results/problems/train_sources/{source}.jsonl", source=TRAIN_SOURCES
        ),
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
        subset=lambda wc: subset_flags(config["benchmarks"][wc.benchmark]),
    shell:
        "codedpo prepare --source {input.source} --format {params.format} "
        "{params.split} {params.template} {params.subset} --out {output} > {log} 2>&1"


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
