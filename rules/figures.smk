# One rule per paper figure (1-23), generated from the manifest toroids.figures.FIGURES: its tables are
# the inputs, the experiments of each slot a parameter (see toroids.figures.select).
for _name, _fig in FIGURE_MANIFEST.items():

    rule:
        name:
            _name
        input:
            **{t: f"{RESULTS}/tables/{t}.csv" for t in _fig.tables},
        output:
            pdf=f"{RESULTS}/figures/{_name}.pdf",
            png=report(
                f"{RESULTS}/figures/{_name}.png",
                caption=f"../report/{_name}.rst",
                category=_fig.category,
            ),
        log:
            f"{RESULTS}/logs/figures/{_name}.log",
        localrule: True
        conda:
            "../envs/plot.yaml"
        params:
            slots=FIGURE_SELECTION[_name].slots,
            left_out=FIGURE_SELECTION[_name].left_out,
            local_energy=caption_noise(_name),
        script:
            "../workflow/scripts/figure.py"


rule figure_index:
    output:
        table=f"{RESULTS}/figures/index.csv",
        page=report(
            f"{RESULTS}/figures/index.html",
            caption="../report/figure_index.rst",
            category="Figures",
        ),
    log:
        f"{RESULTS}/logs/figures/index.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        rows=figure_index(config, RESULTS, FIGURE_SELECTION),
    script:
        "../workflow/scripts/figure_index.py"


rule study_config:
    output:
        config=f"{RESULTS}/config.yaml",
        page=report(
            f"{RESULTS}/config.html",
            caption="../report/study_config.rst",
            category="Config",
        ),
    log:
        f"{RESULTS}/logs/study_config.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        # the operational settings are not params (they would rerun this rule): the script adds them
        config=canonical(without_operational(config)),
    script:
        "../workflow/scripts/study_config.py"
