rule fig01_local_energy:
    input:
        f"{RESULTS}/tables/local_energy.csv",
    output:
        pdf=f"{RESULTS}/figures/fig01_local_energy.pdf",
        png=report(
            f"{RESULTS}/figures/fig01_local_energy.png",
            caption="../report/fig01_local_energy.rst",
            category="Flatness",
        ),
    log:
        f"{RESULTS}/logs/figures/fig01_local_energy.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/fig01_local_energy.py"


rule fig01_generalization:
    input:
        models=f"{RESULTS}/tables/models.csv",
        local_energy=f"{RESULTS}/tables/local_energy.csv",
    output:
        pdf=f"{RESULTS}/figures/fig01_generalization.pdf",
        png=report(
            f"{RESULTS}/figures/fig01_generalization.png",
            caption="../report/fig01_generalization.rst",
            category="Flatness",
        ),
    log:
        f"{RESULTS}/logs/figures/fig01_generalization.log",
    conda:
        "../envs/plot.yaml"
    params:
        sigma_star=config["local_energy"]["sigma_star"],
    script:
        "../workflow/scripts/fig01_generalization.py"


rule fig02_geodesic_paths:
    input:
        f"{RESULTS}/tables/paths.csv",
    output:
        pdf=f"{RESULTS}/figures/fig02_geodesic_paths.pdf",
        png=report(
            f"{RESULTS}/figures/fig02_geodesic_paths.png",
            caption="../report/fig02_geodesic_paths.rst",
            category="Paths",
        ),
    log:
        f"{RESULTS}/logs/figures/fig02_geodesic_paths.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/fig02_geodesic_paths.py"
