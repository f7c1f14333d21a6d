# Stage 4b: error decomposition of the models of Gaussian-mixture datasets
# (8gaussians, 25gaussians, gmm_aniso): for every solver x step count, on the
# same noise, the total W2, the discretization error (the same solver on the
# exact oracle of the path) and the W2 of the model's exact flow (dopri5 at a
# tight tolerance), next to the noise floor; plus straightness and normalized
# path energy of the model's flow. sfbench.eval.decomposition defines them.
#
# Config keys read here:
#   config["decompose"]["solvers"]          fixed-step solvers (e.g. [euler, heun, euler_maruyama]);
#                                           models trained on pairs keep the ODE ones,
#                                           a distilled model only euler at 1 step
#   config["decompose"]["steps"]            step counts (e.g. [1, 2, 4, 8, 16, 32])
#   config["decompose"]["n_samples"]        samples per solve (e.g. 1000)
#   config["decompose"]["seed"]             noise seed (sample i: the same noise in every solve)
#   config["decompose"]["exact_tolerance"]  rtol = atol of the exact solves (e.g. 1.0e-5)
#   config["evaluation"]["reference_seed"]  first data seed of the noise-floor draws
# Which (dataset, method, seed) are decomposed is the caller's choice (rule all /
# report inputs); the command itself refuses a dataset without a closed form.


rule decompose:
    input:
        model="results/models/{dataset}/{method}/seed{seed}.pt",
        data="resources/data/{dataset}.npz",
        code=code_inputs("decompose"),
    output:
        result="results/decompose/{dataset}/{method}/seed{seed}.json",
    log:
        "logs/decompose/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/decompose/{dataset}/{method}/seed{seed}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        solvers=" ".join(config["decompose"]["solvers"]),
        steps=" ".join(map(str, config["decompose"]["steps"])),
        n_samples=config["decompose"]["n_samples"],
        seed=config["decompose"]["seed"],
        tolerance=config["decompose"]["exact_tolerance"],
        floor_seed=config["evaluation"]["reference_seed"],
        key=lambda w: job_key("decompose", w),
        parent=lambda w: job_key("train", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} decompose --model {input.model} --data {input.data}"
        " --solvers {params.solvers} --steps {params.steps} --n-samples {params.n_samples}"
        " --seed {params.seed} --exact-tolerance {params.tolerance} --floor-seed {params.floor_seed}"
        " --result {output.result} --job-key {params.key} --parent-key {params.parent} > {log} 2>&1"
