# Stage 2: train each method x dataset x seed once. The training settings of a
# method are written to a YAML file that `sfbench train --config` reads, so the
# same file reproduces a model by hand. Resumable checkpoints live outside the
# outputs (Snakemake deletes the outputs of a failed job).


rule train_config:
    output:
        "resources/train_config/{method}.yaml",
    log:
        "logs/train_config/{method}.log",
    params:
        settings=lambda w: json.dumps(train_settings(w.method), sort_keys=True),
    localrule: True
    conda:
        "../envs/sfbench.yaml"
    shell:
        "printf '%s\\n' {params.settings:q} > {output} 2> {log}"


rule train:
    input:
        data="resources/data/{dataset}.npz",
        config=lambda w: (
            f"resources/train_config/images/{w.method}.yaml"
            if is_image(w.dataset)
            else f"resources/train_config/{w.method}.yaml"
        ),
        code=code_inputs("train"),
    output:
        model="results/models/{dataset}/{method}/seed{seed}.pt",
        result="results/train/{dataset}/{method}/seed{seed}.json",
    log:
        "logs/train/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{method}/seed{seed}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        checkpoint_dir=lambda w: f"checkpoints/{w.dataset}/{w.method}/seed{w.seed}",
        data_dir=lambda w: data_dir_flag(w.dataset),
        key=lambda w: job_key("train", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} train --method {wildcards.method} --dataset {wildcards.dataset}"
        " --data {input.data} {params.data_dir} --seed {wildcards.seed} --config {input.config}"
        " --checkpoint-dir {params.checkpoint_dir} --no-progress"
        " --out {output.model} --result {output.result} --job-key {params.key} > {log} 2>&1"
