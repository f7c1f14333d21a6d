# Stage 4: evaluations of a trained model besides its sweep. The NLL of image
# models (bits/dim through the probability-flow ODE, with Hutchinson's
# divergence where the preset asks; plus the variational bound of models on a
# discrete DDPM schedule). The error decomposition of the decompose block's
# models against the exact oracle of their Gaussian mixture: total W2, the
# solver's discretization error, the model's exact-flow W2, the noise floor
# (sfbench.eval.decomposition).


rule nll:
    input: unpack(per_model(JobPlan.model_inputs))
    output: result=paths.NLL
    wildcard_constraints: dataset=one_of(PLAN.datasets(IMAGE))
    log: paths.log("nll")
    benchmark: paths.benchmark("nll")
    params: **job_params("nll", per_model(cmd.nll_flags), parent=True)
    conda: CONDA
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} {params.globals} evaluate --nll --model {input.model}"
        " --data {input.data} {params.flags} --result {output.result}"
        " --job-key {params.key} --parent-key {params.parent} > {log} 2>&1"


rule decompose:
    input: unpack(per_model(JobPlan.model_inputs))
    output: result=paths.DECOMPOSE
    log: paths.log("decompose")
    benchmark: paths.benchmark("decompose")
    params: **job_params("decompose", lambda w: cmd.decompose_flags(PLAN), parent=True)
    conda: CONDA
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} {params.globals} decompose --model {input.model}"
        " --data {input.data} {params.flags} --result {output.result}"
        " --job-key {params.key} --parent-key {params.parent} > {log} 2>&1"
