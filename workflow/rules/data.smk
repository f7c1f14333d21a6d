# Stage 1: draw each dataset's train and test splits once (2-D and image
# datasets alike); measure the W2 noise floor of the 2-D datasets between the
# test split and an independent draw of the same size (images: images.smk).


rule data:
    input:
        code=code_inputs("data"),
    output:
        data="resources/data/{dataset}.npz",
        result="results/data/{dataset}.json",
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "logs/benchmarks/data/{dataset}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        data_seed=lambda w: block_of(w.dataset)["data"].get("data_seed", 0),
        n_train=lambda w: block_of(w.dataset)["data"]["n_train"],
        n_test=lambda w: block_of(w.dataset)["data"]["n_test"],
        data_dir=lambda w: data_dir_flag(w.dataset),
        key=lambda w: job_key("data", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} data --dataset {wildcards.dataset} --data-seed {params.data_seed}"
        " --n-train {params.n_train} --n-test {params.n_test} {params.data_dir}"
        " --out {output.data} --result {output.result} --job-key {params.key} > {log} 2>&1"


rule reference:
    input:
        data="resources/data/{dataset}.npz",
        code=code_inputs("reference"),
    output:
        result="results/reference/{dataset}.json",
    wildcard_constraints:
        dataset=dataset_regex(config["datasets"]),
    log:
        "logs/reference/{dataset}.log",
    benchmark:
        "logs/benchmarks/reference/{dataset}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        seed=config["evaluation"]["reference_seed"],
        key=lambda w: job_key("reference", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} sweep --reference --dataset {wildcards.dataset} --data {input.data}"
        " --seed {params.seed} --result {output.result} --job-key {params.key} > {log} 2>&1"
