# Problem sets normalized into the problems JSONL, and the expected outputs that the executor
# computes once from reference solutions (inside the sandbox) where a source gives none.


rule prepare_train_source:
    input:
        source=W.source_path,
        template=W.source_template,
    output:
        res("problems/train_sources/{source}.jsonl"),
    log:
        logpath("prepare_problems/train_sources/{source}.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        flags=W.source_flags,
    shell:
        "codedpo prepare --source {input.source} {params.flags} --out {output} > {log} 2>&1"


# A training source's file exported from the Hugging Face Hub when it is not there yet (needs
# internet: run it on a login node, or copy the file in, before submitting to compute nodes).
rule export_train_source:
    output:
        "resources/train_sources/{file}",
    log:
        logpath("export_train_source/{file}.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        export=W.export_flags,
    shell:
        "codedpo export-source {params.export} --out {output} > {log} 2>&1"


rule filter_train_problems:
    input:
        problems=expand(
            res("problems/train_sources/{source}.jsonl"), source=W.train_sources
        ),
        benchmarks=expand(res("problems/{benchmark}.jsonl"), benchmark=W.benchmarks),
        runtime=W.runtime_input(),
    output:
        problems=res("problems/train.jsonl"),
        report=res("problems/train.filter_report.json"),
    log:
        logpath("filter_train_problems/train.log"),
    benchmark:
        benchpath("filter_train_problems/train.tsv")
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    threads: config["execution"]["workers"]
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        filters=W.filter_flags(),
        execution=W.execution_flags(),
        runtime=W.runtime_flag(),
    shell:
        "codedpo launch -- codedpo filter --problems {input.problems} "
        "--benchmarks {input.benchmarks} --out {output.problems} --report {output.report} "
        "{params.filters} {params.execution} {params.runtime} --workers {threads} "
        "--no-progress > {log} 2>&1"


# rounds_problems: disjoint - round k trains on the k-th of a seeded partition of the pool.
rule slice_train_problems:
    input:
        res("problems/train.jsonl"),
    output:
        res("problems/rounds/r{round}.jsonl"),
    log:
        logpath("slice_train_problems/r{round}.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        seed=config["rounds_seed"],
        slices=W.slice_flags(),
    shell:
        "codedpo slice-problems --problems {input} {params.slices} "
        "--round {wildcards.round} --seed {params.seed} --out {output} > {log} 2>&1"


rule prepare_benchmark:
    input:
        source=W.source_path,
        template=W.source_template,
    output:
        res("problems/{benchmark}.jsonl"),
    log:
        logpath("prepare_problems/{benchmark}.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        flags=W.source_flags,
        exclude=W.exclude_flags,
    shell:
        "codedpo prepare --source {input.source} {params.flags} {params.exclude} "
        "--out {output} > {log} 2>&1"


# The judge runtime: the pinned packages untrusted code may import (codedpo.execution.runtime), in a
# directory of its own that the sandbox binds read-only.
rule build_runtime:
    input:
        requirements=config["execution"]["runtime"] or [],
    output:
        directory(W.runtime_dir),
    log:
        logpath("build_runtime/judge.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    shell:
        "codedpo runtime --requirements {input.requirements} --out {output} --no-progress "
        "> {log} 2>&1"


rule compute_expected:
    input:
        problems=res("problems/{name}.jsonl"),
        runtime=W.runtime_input(),
    output:
        res("problems/{name}.expected.json"),
    log:
        logpath("compute_expected/{name}.log"),
    benchmark:
        benchpath("compute_expected/{name}.tsv")
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    threads: config["execution"]["workers"]
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        execution=W.execution_flags(),
        runtime=W.runtime_flag(),
        check=W.check_references_flag,
    shell:
        "codedpo launch -- codedpo execute --problems {input.problems} --expected {output} "
        "--expected-only {params.check} {params.execution} {params.runtime} "
        "--workers {threads} --no-progress > {log} 2>&1"


rule download_benchmark:
    output:
        "resources/benchmarks/{file}",
    log:
        logpath("download_benchmark/{file}.log"),
    localrule: True
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["cpu"]
    params:
        name=lambda wc: wc.file,
    shell:
        "codedpo download --name {params.name} --out {output} > {log} 2>&1"
