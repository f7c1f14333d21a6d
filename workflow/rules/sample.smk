# Stage 3: the sampling sweep. One job per model loads it once and runs every
# cell of its sweep config (solver x grid x steps, adaptive solver x tolerance),
# evaluating each sample set against the test split. One process per model
# instead of one per cell: a process start costs ~4 s (torch, MLflow), more than
# many cells compute (BENCHMARKS.md). On vector data the job also writes the
# model's NLL; images have NLL jobs of their own (evaluate.smk), and a one-step
# map has no ODE and so no NLL: their sweeps are the variant sweep_no_nll.


rule sweep:
    input: unpack(per_model(JobPlan.sweep_inputs))
    output: **paths.sweep_outputs(nll=True)
    wildcard_constraints:
        dataset=one_of(sorted({m.dataset for m in PLAN.models() if m.nll_in_sweep})),
        method=one_of(sorted({m.method for m in PLAN.models() if m.nll_in_sweep})),
    log: paths.log("sweep")
    benchmark: paths.benchmark("sweep")
    params:
        **job_params("sweep", with_inputs(cmd.sweep_flags), parent=True),
        nll=output_flag("--nll-result", "nll"),
    conda: CONDA
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} {params.globals} sweep --model {input.model}"
        " --data {input.data} --config {input.config} {params.flags} {params.nll}"
        " --out {output.samples} --plot {output.plot} --result {output.result}"
        " --job-key {params.key} --parent-key {params.parent} > {log} 2>&1"


use rule sweep as sweep_no_nll with:
    output: **paths.sweep_outputs(nll=False)
    wildcard_constraints: dataset=NAME, method=NAME


ruleorder: sweep > sweep_no_nll
