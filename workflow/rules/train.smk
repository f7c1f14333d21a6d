# Stage 2: the settings files jobs read, the reflow chain's pairs, and one
# training per model. A model of a method that needs pairs (the reflow chain,
# sfbench.pipeline.plan.REFLOW_CHAIN) learns from (noise, ODE sample) pairs of
# its teacher; the others from the dataset. Resumable checkpoints live outside
# the outputs (Snakemake deletes the outputs of a failed job).


# resources/train_config/[images/]<method>.yaml (`sfbench train --config`) and
# resources/sweep_config/<block>[_one_step].yaml (`sfbench sweep --config`).
rule job_config:
    output: paths.JOB_CONFIG
    wildcard_constraints:
        kind=one_of(paths.JOB_CONFIG_KINDS),
        name=r"(images/)?[A-Za-z0-9_]+",
    log: "logs/{kind}_config/{name}.log"
    params: settings=lambda w: config_text(w.kind, job_config(PLAN, w.kind, w.name))
    localrule: True
    conda: CONDA
    shell:
        "printf '%s\\n' {params.settings:q} > {output} 2> {log}"


rule pairs:
    input: unpack(per_model(JobPlan.pairs_inputs))
    output: pairs=paths.PAIRS, result=paths.PAIRS_RECORD
    log: paths.log("pairs")
    benchmark: paths.benchmark("pairs")
    params: **job_params("pairs", per_model(cmd.pairs_flags))
    conda: CONDA
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} {params.globals} reflow-pairs --model {input.model}"
        " {params.flags} --out {output.pairs} --result {output.result} --job-key {params.key} > {log} 2>&1"


rule train:
    input: unpack(per_model(JobPlan.train_inputs))
    output: model=paths.MODEL, result=paths.TRAIN_RECORD
    log: paths.log("train")
    benchmark: paths.benchmark("train")
    params: **job_params("train", with_inputs(cmd.train_flags)), launch=train_launcher
    conda: CONDA
    shell:
        "OMP_NUM_THREADS={threads} {params.launch} {params.globals} train --method {wildcards.method}"
        " --dataset {wildcards.dataset} {params.flags} --config {input.config} --no-progress"
        " --out {output.model} --result {output.result} --job-key {params.key} > {log} 2>&1"
