# Stage 2b: reflow (2-RF) and one-step distillation (Liu et al. 2023), after the
# rectified-flow models of stage 2. Include it after train.smk and sample.smk.
#
#   1-RF  results/models/{dataset}/rectified_flow/seed{seed}.pt   (rule train)
#     -> reflow_pairs   results/pairs/{dataset}/reflow/seed{seed}.npz   (z, ODE_1RF(z))
#     -> train_paired   results/models/{dataset}/reflow/seed{seed}.pt  (2-RF)
#     -> distill_pairs  results/pairs/{dataset}/distill/seed{seed}.npz  (z, ODE_2RF(z))
#     -> train_paired   results/models/{dataset}/distill/seed{seed}.pt (one-step map)
#     -> sweep_paired   results/sweep/{dataset}/{reflow,distill}/seed{seed}.json
#
# Config keys read here:
#   config["reflow"]["n_pairs"]        pairs per model (e.g. 20000)
#   config["reflow"]["pair_seed"]      noise seed of the pairs: reflow pairs use
#                                      pair_seed + seed, distillation pairs
#                                      pair_seed + 1000 + seed (fresh noise)
#   config["reflow"]["solver"]         deterministic solver of the pairs (e.g. rk4)
#   config["reflow"]["steps"]          its steps (fixed-step solvers; e.g. 16)
#   config["reflow"]["sweep_solvers"]  ODE solvers the 2-RF model is swept with
#                                      (no stochastic sampler samples a model
#                                      trained on pairs: sfbench refuses them)
#   config["sampling"]: steps, adaptive, n_samples, seed, device, trajectory
#                                      (as the sweep rule; trajectory.solver must
#                                      be in reflow.sweep_solvers)
# Training settings: resources/train_config/{reflow,distill}.yaml from the
# train_config rule, i.e. config["train"] updated by
# config["train_overrides"]["reflow" | "distill"] (e.g. steps: 1500).
# The distilled model is only valid as one Euler step: its sweep is euler at 1 step.


rule reflow_pairs:
    input:
        model="results/models/{dataset}/rectified_flow/seed{seed}.pt",
        code=code_inputs("reflow_pairs"),
    output:
        pairs="results/pairs/{dataset}/{method}/seed{seed}.npz",
        result="results/pairs/{dataset}/{method}/seed{seed}.json",
    wildcard_constraints:
        method="reflow",
    log:
        "logs/reflow_pairs/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/reflow_pairs/{dataset}/{method}/seed{seed}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        n_pairs=config["reflow"]["n_pairs"],
        seed=lambda w: config["reflow"]["pair_seed"] + int(w.seed),
        solver=config["reflow"]["solver"],
        steps=config["reflow"]["steps"],
        key=lambda w: job_key("pairs", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} reflow-pairs --model {input.model}"
        " --n-pairs {params.n_pairs} --seed {params.seed} --solver {params.solver} --steps {params.steps}"
        " --out {output.pairs} --result {output.result} --job-key {params.key} > {log} 2>&1"


rule distill_pairs:
    input:
        model="results/models/{dataset}/reflow/seed{seed}.pt",
        code=code_inputs("distill_pairs"),
    output:
        pairs="results/pairs/{dataset}/{method}/seed{seed}.npz",
        result="results/pairs/{dataset}/{method}/seed{seed}.json",
    wildcard_constraints:
        method="distill",
    log:
        "logs/distill_pairs/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/distill_pairs/{dataset}/{method}/seed{seed}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        n_pairs=config["reflow"]["n_pairs"],
        seed=lambda w: config["reflow"]["pair_seed"] + 1000 + int(w.seed),
        solver=config["reflow"]["solver"],
        steps=config["reflow"]["steps"],
        key=lambda w: job_key("pairs", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} reflow-pairs --model {input.model}"
        " --n-pairs {params.n_pairs} --seed {params.seed} --solver {params.solver} --steps {params.steps}"
        " --out {output.pairs} --result {output.result} --job-key {params.key} > {log} 2>&1"


# The models of both paired methods; `train` makes the same paths for the
# data-trained methods, so the ruleorder below picks this rule for these two.
rule train_paired:
    input:
        pairs="results/pairs/{dataset}/{method}/seed{seed}.npz",
        config="resources/train_config/{method}.yaml",
        code=code_inputs("train_paired"),
    output:
        model="results/models/{dataset}/{method}/seed{seed}.pt",
        result="results/train/{dataset}/{method}/seed{seed}.json",
    wildcard_constraints:
        method="reflow|distill",
    log:
        "logs/train/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{method}/seed{seed}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        checkpoint_dir=lambda w: f"checkpoints/{w.dataset}/{w.method}/seed{w.seed}",
        key=lambda w: job_key("train", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} train --method {wildcards.method} --dataset {wildcards.dataset}"
        " --pairs {input.pairs} --seed {wildcards.seed} --config {input.config}"
        " --checkpoint-dir {params.checkpoint_dir} --no-progress"
        " --out {output.model} --result {output.result} --job-key {params.key} > {log} 2>&1"


# The sweep of a paired model: deterministic solvers only (reflow), one Euler
# step only (distill); the generic sweep's stochastic solvers would be refused.
rule sweep_paired:
    input:
        model="results/models/{dataset}/{method}/seed{seed}.pt",
        data="resources/data/{dataset}.npz",
        code=code_inputs("sweep_paired"),
    output:
        result="results/sweep/{dataset}/{method}/seed{seed}.json",
        samples="results/samples/{dataset}/{method}/seed{seed}.npz",
        plot="results/plots/{dataset}/{method}/seed{seed}.png",
    wildcard_constraints:
        method="reflow|distill",
    log:
        "logs/sweep/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/sweep/{dataset}/{method}/seed{seed}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        grid=lambda w: (
            "--solvers euler --steps 1 --trajectory euler:1:{n_points}".format(
                **config["sampling"]["trajectory"]
            )
            if w.method == "distill"
            else "--solvers {} --steps {} {} --trajectory {solver}:{steps}:{n_points}".format(
                " ".join(config["reflow"]["sweep_solvers"]),
                " ".join(map(str, config["sampling"]["steps"])),
                adaptive_flags(),
                **config["sampling"]["trajectory"],
            )
        ),
        n_samples=config["sampling"]["n_samples"],
        seed=config["sampling"]["seed"],
        straightness=straightness_flag(),
        device=config["sampling"].get("device", "cpu"),
        key=lambda w: job_key("sweep", w),
        parent=lambda w: job_key("train", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} sweep --model {input.model} --data {input.data}"
        " {params.grid} --n-samples {params.n_samples} --seed {params.seed}"
        " {params.straightness} --device {params.device}"
        " --out {output.samples} --plot {output.plot} --result {output.result}"
        " --job-key {params.key} --parent-key {params.parent} > {log} 2>&1"


ruleorder: train_paired > train
ruleorder: sweep_paired > sweep
