# Stage 4: the likelihood of the 2-RF models of the reflow stage. The sweep job
# of every data-trained model computes its NLL itself (sample.smk); a distilled
# one-step map has none.


rule nll:
    input:
        model="results/models/{dataset}/{method}/seed{seed}.pt",
        data="resources/data/{dataset}.npz",
        code=code_inputs("nll"),
    output:
        result="results/nll/{dataset}/{method}/seed{seed}.json",
    wildcard_constraints:
        dataset=dataset_regex(config["datasets"]),
        method="reflow",
    log:
        "logs/nll/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/nll/{dataset}/{method}/seed{seed}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        n_points=config["evaluation"]["nll"]["n_points"],
        rtol=config["evaluation"]["nll"]["rtol"],
        atol=config["evaluation"]["nll"]["atol"],
        key=lambda w: job_key("nll", w),
        parent=lambda w: job_key("train", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} evaluate --nll --model {input.model} --data {input.data}"
        " --n-test {params.n_points} --rtol {params.rtol} --atol {params.atol}"
        " --result {output.result} --job-key {params.key} --parent-key {params.parent}"
        " > {log} 2>&1"
