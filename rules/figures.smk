rule fig01_local_energy:
    input:
        local_energy=f"{RESULTS}/tables/local_energy.csv",
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
        "../workflow/scripts/figure.py"


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
        "../workflow/scripts/figure.py"


rule fig02_paths:
    input:
        paths=f"{RESULTS}/tables/paths.csv",
    output:
        pdf=f"{RESULTS}/figures/fig02_paths.pdf",
        png=report(
            f"{RESULTS}/figures/fig02_paths.png",
            caption="../report/fig02_paths.rst",
            category="Paths",
        ),
    log:
        f"{RESULTS}/logs/figures/fig02_paths.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/figure.py"


rule fig03_bend_paths:
    input:
        paths=f"{RESULTS}/tables/paths.csv",
    output:
        pdf=f"{RESULTS}/figures/fig03_bend_paths.pdf",
        png=report(
            f"{RESULTS}/figures/fig03_bend_paths.png",
            caption="../report/fig03_bend_paths.rst",
            category="Paths",
        ),
    log:
        f"{RESULTS}/logs/figures/fig03_bend_paths.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/figure.py"


rule fig04_sections:
    input:
        sections=f"{RESULTS}/tables/sections.csv",
    output:
        pdf=f"{RESULTS}/figures/fig04_sections.pdf",
        png=report(
            f"{RESULTS}/figures/fig04_sections.png",
            caption="../report/fig04_sections.rst",
            category="Sections",
        ),
    log:
        f"{RESULTS}/logs/figures/fig04_sections.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/figure.py"


rule fig05_distances:
    input:
        distances=f"{RESULTS}/tables/distances.csv",
    output:
        pdf=f"{RESULTS}/figures/fig05_distances.pdf",
        png=report(
            f"{RESULTS}/figures/fig05_distances.png",
            caption="../report/fig05_distances.rst",
            category="Distances",
        ),
    log:
        f"{RESULTS}/logs/figures/fig05_distances.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/figure.py"


rule fig06_overparameterization:
    input:
        models=f"{RESULTS}/tables/models.csv",
        local_energy=f"{RESULTS}/tables/local_energy.csv",
        distances=f"{RESULTS}/tables/distances.csv",
        barriers=f"{RESULTS}/tables/barriers.csv",
    output:
        pdf=f"{RESULTS}/figures/fig06_overparameterization.pdf",
        png=report(
            f"{RESULTS}/figures/fig06_overparameterization.png",
            caption="../report/fig06_overparameterization.rst",
            category="Binary networks",
        ),
    log:
        f"{RESULTS}/logs/figures/fig06_overparameterization.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/figure.py"


rule fig07_binary_paths:
    input:
        paths=f"{RESULTS}/tables/paths.csv",
    output:
        pdf=f"{RESULTS}/figures/fig07_binary_paths.pdf",
        png=report(
            f"{RESULTS}/figures/fig07_binary_paths.png",
            caption="../report/fig07_binary_paths.rst",
            category="Binary networks",
        ),
    log:
        f"{RESULTS}/logs/figures/fig07_binary_paths.log",
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/figure.py"
