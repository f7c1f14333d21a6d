# Stage 5: tables and plots from the result files (no tracking server needed),
# logged to MLflow as the artifacts of the report run. Its files are those of
# sfbench.report.manifest.ReportContents; the tables and figures are also
# marked for Snakemake's own report (`snakemake --report report.html`).


rule report:
    input: unpack(lambda w: PLAN.report_inputs())
    output:
        documents=PLAN.report_documents(),
        tables=[report(p, category="Tables", caption="../report/table.rst")
                for p in PLAN.report_files("tables")],
        figures=[report(p, category="Figures", caption="../report/figure.rst")
                 for p in PLAN.report_files("figures")],
        result=paths.REPORT_RESULT,
    log: "logs/report/report.log"
    benchmark: "logs/benchmarks/report/report.tsv"
    params: **job_params("report", report_job_flags)
    conda: CONDA
    shell:
        "OMP_NUM_THREADS={threads} {params.sfbench} {params.globals} report {params.flags}"
        " --results {input.data} {input.reference} {input.classifier} {input.train}"
        " {input.sweep} {input.nll} {input.decompose}"
        " --result {output.result} --job-key {params.key} > {log} 2>&1"
