# The demo policies: tiny models shaped like the paper's (codedpo.models.demo_families), trained from
# scratch on the demo problems, saved with save_pretrained so that every later stage loads them
# exactly as it loads a hub model.


rule build_demo_model:
    input:
        problems=config["demo_problems"],
        tokenizer=W.demo_tokenizer_input,
    output:
        directory(res("models/{policy}")),
    log:
        logpath("build_demo_model/{policy}.log"),
    benchmark:
        benchpath("build_demo_model/{policy}.tsv")
    conda:
        "../envs/codedpo.yaml"
    container:
        config["containers"]["gpu"]
    threads: config["training"]["threads"]
    resources:
        # A real tokenizer's 32k-92k vocabulary makes the embedding most of the memory.
        mem_mb=lambda wc, attempt: 3000 * attempt,
        runtime=30,
    params:
        flags=W.demo_flags,
    shell:
        "codedpo launch -- codedpo build-demo-model --problems {input.problems} "
        "--out {output} --threads {threads} {params.flags} --no-progress > {log} 2>&1"
