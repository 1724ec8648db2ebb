# The demo policies: a tokenizer and a tiny Llama trained from scratch on the demo problems, saved
# with save_pretrained so that every later stage loads them exactly as it loads a hub model.


rule build_demo_model:
    input:
        problems=config.get("demo_problems", "src/codedpo/data/demo/problems.jsonl"),
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
        mem_mb=2000,
        runtime=30,
    params:
        demo=lambda wc: config["models"][wc.policy]["demo"],
        threads=config["training"].get("threads", 1),
        flags=lambda wc: " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in config["models"][wc.policy]["demo"].items()
        ),
    shell:
        "codedpo build-demo-model --problems {input.problems} --out {output} "
        "--threads {params.threads} {params.flags} --no-progress > {log} 2>&1"
