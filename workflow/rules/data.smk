# Stage 1: draw each dataset's train and test splits once; measure the W2
# noise floor between the test split and an independent draw of the same size.


rule data:
    output:
        data="resources/data/{dataset}.npz",
        result="results/data/{dataset}.json",
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "logs/benchmarks/data/{dataset}.tsv"
    params:
        data_seed=config["data"]["data_seed"],
        n_train=config["data"]["n_train"],
        n_test=config["data"]["n_test"],
        key=lambda w: job_key("data", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m sfbench data --dataset {wildcards.dataset} --data-seed {params.data_seed}"
        " --n-train {params.n_train} --n-test {params.n_test}"
        " --out {output.data} --result {output.result} --job-key {params.key} > {log} 2>&1"


rule reference:
    input:
        data="resources/data/{dataset}.npz",
    output:
        result="results/reference/{dataset}.json",
    log:
        "logs/reference/{dataset}.log",
    benchmark:
        "logs/benchmarks/reference/{dataset}.tsv"
    params:
        seed=config["evaluation"]["reference_seed"],
        key=lambda w: job_key("reference", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} python -m sfbench sweep --reference --dataset {wildcards.dataset} --data {input.data}"
        " --seed {params.seed} --result {output.result} --job-key {params.key} > {log} 2>&1"
