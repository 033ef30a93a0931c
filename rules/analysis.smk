# The study's tables, a rule each (paths with their barriers), so that a figure, the analysis and the
# scorecard start as soon as the tables they read are done, not after every model and pair of the study
# (the figure rules take only their own tables: toroids.figures.FIGURES). One script, by params.table.
rule table_models:
    input:
        parts=expand(f"{RESULTS}/models/{{m}}/meta.json", m=MODELS),
    output:
        table=f"{RESULTS}/tables/models.csv",
    log:
        f"{RESULTS}/logs/tables/models.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        table="models",
        model_ids=list(MODELS),
    script:
        "../workflow/scripts/tables.py"


rule table_local_energy:
    input:
        parts=expand(f"{RESULTS}/models/{{m}}/local_energy.csv", m=MODELS),
    output:
        table=f"{RESULTS}/tables/local_energy.csv",
    log:
        f"{RESULTS}/logs/tables/local_energy.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        table="local_energy",
        stars=study.flatness_stars(config),
    script:
        "../workflow/scripts/tables.py"


rule table_paths:
    input:
        parts=expand(f"{RESULTS}/pairs/{{b}}.paths.csv", b=BLOCKS)
        + expand(f"{RESULTS}/midpoints/{{b}}.paths.csv", b=MIDPOINT_BLOCKS),
    output:
        table=f"{RESULTS}/tables/paths.csv",
        barriers=f"{RESULTS}/tables/barriers.csv",
    log:
        f"{RESULTS}/logs/tables/paths.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        table="paths",
    script:
        "../workflow/scripts/tables.py"


rule table_distances:
    input:
        parts=expand(f"{RESULTS}/pairs/{{b}}.distances.csv", b=BLOCKS)
        + expand(f"{RESULTS}/midpoints/{{b}}.distances.csv", b=MIDPOINT_BLOCKS),
    output:
        table=f"{RESULTS}/tables/distances.csv",
    log:
        f"{RESULTS}/logs/tables/distances.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        table="distances",
    script:
        "../workflow/scripts/tables.py"


rule table_sections:
    input:
        parts=expand(f"{RESULTS}/sections/{{p}}.csv", p=SECTION_PAIRS),
    output:
        table=f"{RESULTS}/tables/sections.csv",
    log:
        f"{RESULTS}/logs/tables/sections.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        table="sections",
    script:
        "../workflow/scripts/tables.py"


rule table_triplet_sections:
    input:
        parts=expand(f"{RESULTS}/sections/{{t}}.triplet.csv", t=TRIPLETS),
    output:
        table=f"{RESULTS}/tables/triplet_sections.csv",
    log:
        f"{RESULTS}/logs/tables/triplet_sections.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        table="triplet_sections",
    script:
        "../workflow/scripts/tables.py"


rule analysis:
    input:
        models=f"{RESULTS}/tables/models.csv",
        local_energy=f"{RESULTS}/tables/local_energy.csv",
        barriers=f"{RESULTS}/tables/barriers.csv",
        distances=f"{RESULTS}/tables/distances.csv",
        sharpness=expand(f"{RESULTS}/models/{{m}}/sharpness.csv", m=CONTINUOUS),
    output:
        correlations=f"{RESULTS}/tables/correlations.csv",
        sharpness=f"{RESULTS}/tables/sharpness.csv",
        distance_barrier=f"{RESULTS}/tables/distance_barrier.csv",
        claims=f"{RESULTS}/tables/claims.csv",
        claim_tests=f"{RESULTS}/tables/claim_tests.csv",
        page=report(
            f"{RESULTS}/tables/claims.html",
            caption="../report/claims.rst",
            category="Claims",
        ),
    log:
        f"{RESULTS}/logs/analysis.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        stats=canonical(config["stats"]),
    script:
        "../workflow/scripts/analysis.py"


rule scorecard:
    input:
        paper=PAPER_NUMBERS,
        models=f"{RESULTS}/tables/models.csv",
        barriers=f"{RESULTS}/tables/barriers.csv",
        distances=f"{RESULTS}/tables/distances.csv",
    output:
        table=f"{RESULTS}/tables/paper_comparison.csv",
        page=report(
            f"{RESULTS}/tables/paper_comparison.html",
            caption="../report/paper_comparison.rst",
            category="Claims",
        ),
    log:
        f"{RESULTS}/logs/scorecard.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        scale=study.experiment_scale(config),
        solutions_only=config["stats"]["solutions_only"],
    script:
        "../workflow/scripts/scorecard.py"
