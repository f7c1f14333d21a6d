# Stage 5: tables and plots from the result files (no tracking server needed),
# logged to MLflow as the artifacts of the report run. The tables and figures
# are also marked for Snakemake's own report (`snakemake --report report.html`).


rule report:
    input:
        unpack(report_inputs),
        samples=all_model_paths("results/samples/{dataset}/{method}/seed{seed}.npz"),
        code=code_inputs("report"),
    output:
        md="results/report/report.md",
        html="results/report/report.html",
        metrics="results/report/metrics.json",
        curves="results/report/curves.csv",
        provenance="results/report/provenance.json",
        tables=[
            report(path, category="Tables", caption="../report/table.rst")
            for path in report_tables()
        ],
        figures=[
            report(path, category="Figures", caption="../report/figure.rst")
            for path in report_figures()
        ],
        result="results/report/result.json",
    log:
        "logs/report/report.log",
    benchmark:
        "logs/benchmarks/report/report.tsv"
    params:
        env=environment_fingerprint(),
        sfbench=SFBENCH,
        preset=config["preset"],
        out_dir=lambda w, output: os.path.dirname(output.md),
        quality_datasets=" ".join(config["report"]["quality_datasets"]) or "none",
        quality_factor=config["report"]["quality_factor"],
    conda:
        "../envs/sfbench.yaml"
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} report --preset {params.preset} --out-dir {params.out_dir}"
        " --quality-datasets {params.quality_datasets} --quality-factor {params.quality_factor}"
        " --results {input.data} {input.reference} {input.classifier} {input.train}"
        " {input.sweep} {input.nll} {input.decompose}"
        " --result {output.result} --job-key report > {log} 2>&1"
