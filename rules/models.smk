# The demo policies: tiny models shaped like the paper's (codedpo.demo_families), trained from
# scratch on the demo problems, saved with save_pretrained so that every later stage loads them
# exactly as it loads a hub model. (The two helpers below serve this rule only.)
import os


def demo_flags(wildcards):
    """`codedpo build-demo-model` flags from `models.<policy>.demo` (null values: defaults)."""
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(str(value))}"
        for key, value in config["models"][wildcards.policy]["demo"].items()
        if value is not None
    )


def demo_tokenizer_input(wildcards):
    """A tokenizer directory the policy is built on (editing it rebuilds), if it is one; a Hub
    id is a parameter only, and a missing directory is the build's clear error."""
    source = config["models"][wildcards.policy]["demo"].get("tokenizer")
    return source if source and os.path.isdir(source) else []


rule build_demo_model:
    input:
        problems=config.get("demo_problems", "src/codedpo/data/demo/problems.jsonl"),
        tokenizer=demo_tokenizer_input,
    output:
        directory("results/models/{policy}"),
    log:
        "logs/build_demo_model/{policy}.log",
    benchmark:
        "benchmarks/build_demo_model/{policy}.tsv"
    conda:
        "../envs/codedpo.yaml"
    container:
        config.get("containers", {}).get("gpu")
    resources:
        # A real tokenizer's 32k-92k vocabulary makes the embedding most of the memory.
        mem_mb=lambda wc, attempt: 3000 * attempt,
        runtime=30,
    params:
        demo=lambda wc: config["models"][wc.policy]["demo"],
        threads=config["training"].get("threads", 1),
        flags=demo_flags,
    shell:
        "codedpo build-demo-model --problems {input.problems} --out {output} "
        "--threads {params.threads} {params.flags} --no-progress > {log} 2>&1"
