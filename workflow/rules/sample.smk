# Stage 3: the sampling sweep. One job per model loads it once and runs every
# solver at every step count (and every adaptive solver at every tolerance),
# evaluating each sample set against the test split, and then computes the
# model's NLL (the record of `sfbench evaluate --nll`). One process per model
# instead of one per cell, and one instead of two per model: a process start
# costs ~4 s (torch, MLflow), more than many jobs compute (BENCHMARKS.md).


rule sweep:
    input:
        model="results/models/{dataset}/{method}/seed{seed}.pt",
        data="resources/data/{dataset}.npz",
        code=code_inputs("sweep"),
    output:
        result="results/sweep/{dataset}/{method}/seed{seed}.json",
        samples="results/samples/{dataset}/{method}/seed{seed}.npz",
        plot="results/plots/{dataset}/{method}/seed{seed}.png",
        nll="results/nll/{dataset}/{method}/seed{seed}.json",
    wildcard_constraints:
        dataset=dataset_regex(config["datasets"]),
        method=dataset_regex(config["methods"]),  # the data-trained ones
    log:
        "logs/sweep/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/sweep/{dataset}/{method}/seed{seed}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        solvers=" ".join(config["sampling"]["solvers"]) or "none",
        steps=" ".join(map(str, config["sampling"]["steps"])),
        grids=grid_flags(),
        adaptive=adaptive_flags(),
        n_samples=config["sampling"]["n_samples"],
        seed=config["sampling"]["seed"],
        device=config["sampling"].get("device", "cpu"),
        trajectory=(
            "--trajectory {solver}:{steps}:{n_points}".format(**config["sampling"]["trajectory"])
        ),
        straightness=straightness_flag(),
        nll=(
            "--nll-points {n_points} --nll-rtol {rtol} --nll-atol {atol}".format(
                **config["evaluation"]["nll"]
            )
        ),
        key=lambda w: job_key("sweep", w),
        parent=lambda w: job_key("train", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} sweep --model {input.model} --data {input.data}"
        " --solvers {params.solvers} --steps {params.steps} {params.grids} {params.adaptive}"
        " --nll-result {output.nll} {params.nll}"
        " --n-samples {params.n_samples} --seed {params.seed} {params.trajectory}"
        " {params.straightness} --device {params.device}"
        " --out {output.samples} --plot {output.plot} --result {output.result}"
        " --job-key {params.key} --parent-key {params.parent} > {log} 2>&1"
