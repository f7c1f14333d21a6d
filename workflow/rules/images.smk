# The image part of the comparison (the preset's `images:` block): digits on the
# CPU, Fashion-MNIST and CIFAR-10 on a GPU. Data and training are the rules of
# data.smk and train.smk (the block sets their settings); what differs is here:
#
#   classifier       the digits FID feature extractor, trained once by the pipeline
#   image_reference  the test split's features (cached once for every sweep), the
#                    FID floor (train-split images) and the Gaussian baseline
#   image_sweep      every solver x grid x step count, FID / KID of each cell
#   image_nll        bits/dim through the probability-flow ODE (+ DDPM VLB)
#
# Rules of one kind are told apart by the dataset wildcard (images.datasets
# here, datasets in sample.smk / evaluate.smk / data.smk's reference).

IMAGES = images_config()
IMAGE_DATASETS = dataset_regex(IMAGES["datasets"])


rule image_train_config:
    output:
        "resources/train_config/images/{method}.yaml",
    log:
        "logs/train_config/images/{method}.log",
    params:
        settings=lambda w: json.dumps(train_settings(w.method, IMAGES), sort_keys=True),
    localrule: True
    conda:
        "../envs/sfbench.yaml"
    shell:
        "printf '%s\\n' {params.settings:q} > {output} 2> {log}"


rule classifier:
    input:
        code=code_inputs("classifier"),
    output:
        model="results/models/fid_classifier/{dataset}.pt",
        result="results/train/fid_classifier/{dataset}.json",
    wildcard_constraints:
        dataset="digits",
    log:
        "logs/classifier/{dataset}.log",
    benchmark:
        "logs/benchmarks/classifier/{dataset}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        seed=IMAGES.get("classifier", {}).get("seed", 0),
        steps=(
            f"--steps {IMAGES['classifier']['steps']}"
            if "steps" in IMAGES.get("classifier", {})
            else ""
        ),
        key=lambda w: job_key("classifier", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} classifier --dataset {wildcards.dataset}"
        " --seed {params.seed} {params.steps} --out {output.model} --result {output.result}"
        " --job-key {params.key} > {log} 2>&1"


rule image_reference:
    input:
        unpack(classifier_input),
        data="resources/data/{dataset}.npz",
        code=code_inputs("image_reference"),
    output:
        result="results/reference/{dataset}.json",
        features="results/reference/{dataset}_features.npz",
    wildcard_constraints:
        dataset=IMAGE_DATASETS,
    log:
        "logs/reference/{dataset}.log",
    benchmark:
        "logs/benchmarks/reference/{dataset}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        n_samples=IMAGES["sampling"]["n_samples"],
        seed=IMAGES["evaluation"]["reference_seed"],
        draws=IMAGES["evaluation"].get("reference_draws", 3),
        classifier=classifier_flag,
        fid=fid_flags(),
        data_dir=lambda w: data_dir_flag(w.dataset),
        key=lambda w: job_key("reference", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} sweep --reference --dataset {wildcards.dataset}"
        " --data {input.data} {params.data_dir} --n-samples {params.n_samples} --seed {params.seed}"
        " --reference-draws {params.draws} {params.classifier} {params.fid}"
        " --fid-features {output.features} --result {output.result} --job-key {params.key}"
        " > {log} 2>&1"


rule image_sweep:
    input:
        unpack(classifier_input),
        model="results/models/{dataset}/{method}/seed{seed}.pt",
        data="resources/data/{dataset}.npz",
        features="results/reference/{dataset}_features.npz",
        code=code_inputs("image_sweep"),
    output:
        result="results/sweep/{dataset}/{method}/seed{seed}.json",
        samples="results/samples/{dataset}/{method}/seed{seed}.npz",
        plot="results/plots/{dataset}/{method}/seed{seed}.png",
    wildcard_constraints:
        dataset=IMAGE_DATASETS,
    log:
        "logs/sweep/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/sweep/{dataset}/{method}/seed{seed}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        solvers=" ".join(IMAGES["sampling"]["solvers"]) or "none",
        steps=" ".join(map(str, IMAGES["sampling"]["steps"])),
        grids=grid_flags(IMAGES["sampling"]),
        adaptive=adaptive_flags(IMAGES["sampling"]),
        n_samples=IMAGES["sampling"]["n_samples"],
        seed=IMAGES["sampling"]["seed"],
        device=IMAGES["sampling"].get("device", "cpu"),
        straightness=straightness_flag(IMAGES["sampling"]),
        classifier=classifier_flag,
        fid=fid_flags(),
        data_dir=lambda w: data_dir_flag(w.dataset),
        key=lambda w: job_key("sweep", w),
        parent=lambda w: job_key("train", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} sweep --model {input.model} --data {input.data}"
        " {params.data_dir} --solvers {params.solvers} --steps {params.steps} {params.grids}"
        " {params.adaptive} --n-samples {params.n_samples} --seed {params.seed}"
        " {params.straightness} --device {params.device} {params.classifier}"
        " --fid-features {input.features} {params.fid}"
        " --out {output.samples} --plot {output.plot} --result {output.result}"
        " --job-key {params.key} --parent-key {params.parent} > {log} 2>&1"


rule image_nll:
    input:
        model="results/models/{dataset}/{method}/seed{seed}.pt",
        data="resources/data/{dataset}.npz",
        code=code_inputs("image_nll"),
    output:
        result="results/nll/{dataset}/{method}/seed{seed}.json",
    wildcard_constraints:
        dataset=IMAGE_DATASETS,
    log:
        "logs/nll/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/nll/{dataset}/{method}/seed{seed}.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        n_points=IMAGES["evaluation"]["nll"]["n_points"],
        rtol=IMAGES["evaluation"]["nll"]["rtol"],
        atol=IMAGES["evaluation"]["nll"]["atol"],
        divergence=IMAGES["evaluation"]["nll"].get("divergence", "auto"),
        n_probes=IMAGES["evaluation"]["nll"].get("n_probes", 1),
        # the DDPM bound needs the model's own discrete steps: ddpm only
        vlb=lambda w: (
            "--vlb" if w.method == "ddpm" and IMAGES["evaluation"].get("vlb", True) else ""
        ),
        data_dir=lambda w: data_dir_flag(w.dataset),
        key=lambda w: job_key("nll", w),
        parent=lambda w: job_key("train", w),
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} evaluate --nll {params.vlb} --model {input.model}"
        " --data {input.data} --dataset {wildcards.dataset} {params.data_dir}"
        " --n-test {params.n_points} --rtol {params.rtol} --atol {params.atol}"
        " --divergence {params.divergence} --n-probes {params.n_probes}"
        " --result {output.result} --job-key {params.key} --parent-key {params.parent}"
        " > {log} 2>&1"
