# Stage 1: each dataset's train and test splits, drawn once; its reference
# numbers (2-D: the W2 noise floor of an independent test-size draw; images:
# the FID floor, the Gaussian baseline and the test split's cached features);
# the FID classifier of datasets whose extractor the pipeline trains.


rule data:
    output: data=paths.DATA, result=paths.DATA_RECORD
    log: paths.log("data", "{dataset}")
    benchmark: paths.benchmark("data", "{dataset}")
    params: **job_params("data", per_dataset(cmd.data_flags))
    conda: CONDA
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} {params.globals} data --dataset {wildcards.dataset}"
        " {params.flags} --out {output.data} --result {output.result} --job-key {params.key} > {log} 2>&1"


# Vector datasets; image_reference (below) also caches the FID features.
rule reference:
    input: unpack(per_dataset(JobPlan.reference_inputs))
    output: **paths.reference_outputs(features=False)
    wildcard_constraints: dataset=one_of(PLAN.datasets(VECTOR))
    log: paths.log("reference", "{dataset}")
    benchmark: paths.benchmark("reference", "{dataset}")
    params:
        **job_params("reference", with_inputs(cmd.reference_flags)),
        features=output_flag("--fid-features", "features"),
    conda: CONDA
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} {params.globals} reference --dataset {wildcards.dataset}"
        " --data {input.data} {params.flags} {params.features} --result {output.result}"
        " --job-key {params.key} > {log} 2>&1"


use rule reference as image_reference with:
    output: **paths.reference_outputs(features=True)
    wildcard_constraints: dataset=one_of(PLAN.datasets(IMAGE))


rule classifier:
    output: model=paths.CLASSIFIER, result=paths.CLASSIFIER_RECORD
    wildcard_constraints: dataset=one_of(PLAN.classifier_datasets())
    log: paths.log("classifier", "{dataset}")
    benchmark: paths.benchmark("classifier", "{dataset}")
    params: **job_params("classifier", lambda w: cmd.classifier_flags(PLAN))
    conda: CONDA
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} {params.globals} classifier --dataset {wildcards.dataset}"
        " {params.flags} --out {output.model} --result {output.result} --job-key {params.key} > {log} 2>&1"
