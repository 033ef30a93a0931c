rule tables:
    input:
        meta=expand(f"{RESULTS}/models/{{m}}/meta.json", m=MODELS),
        local_energy=expand(f"{RESULTS}/models/{{m}}/local_energy.csv", m=MODELS),
        paths=expand(f"{RESULTS}/pairs/{{b}}.paths.csv", b=BLOCKS),
        distances=expand(f"{RESULTS}/pairs/{{b}}.distances.csv", b=BLOCKS),
        bend_paths=expand(f"{RESULTS}/midpoints/{{b}}.paths.csv", b=MIDPOINT_BLOCKS),
        bend_distances=expand(
            f"{RESULTS}/midpoints/{{b}}.distances.csv", b=MIDPOINT_BLOCKS
        ),
        sections=expand(f"{RESULTS}/sections/{{p}}.csv", p=SECTION_PAIRS),
        triplet_sections=expand(f"{RESULTS}/sections/{{t}}.triplet.csv", t=TRIPLETS),
    output:
        models=f"{RESULTS}/tables/models.csv",
        local_energy=f"{RESULTS}/tables/local_energy.csv",
        paths=f"{RESULTS}/tables/paths.csv",
        distances=f"{RESULTS}/tables/distances.csv",
        barriers=f"{RESULTS}/tables/barriers.csv",
        sections=f"{RESULTS}/tables/sections.csv",
        triplet_sections=f"{RESULTS}/tables/triplet_sections.csv",
    log:
        f"{RESULTS}/logs/tables.log",
    localrule: True
    conda:
        "../envs/plot.yaml"
    params:
        model_ids=list(MODELS),
        stars=study.flatness_stars(config),
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
