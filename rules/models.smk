# The demo policies: a tokenizer and a tiny Llama trained from scratch on the demo problems, saved
# with save_pretrained so that every later stage loads them exactly as it loads a hub model.


rule build_demo_model:
    input:
        problems=config["demo_problems"],
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
    threads: torch_threads()
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        flags=lambda wc: demo_flags(wc.policy),
    shell:
        "codedpo launch -- codedpo build-demo-model --problems {input.problems} "
        "--out {output} --threads {threads} {params.flags} --no-progress > {log} 2>&1"
