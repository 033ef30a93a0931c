# toroids: regenerate the figures of Pittorino et al., "Deep Networks on Toroids" (ICML 2022).
#
#   snakemake --cores all                          the default study (config/config.yaml)
#   snakemake --cores all --configfile config/X    another study
#   snakemake --report results/report.html         the HTML report
#
# It also runs as a module of another workflow (README, "As a module"): every path below is relative to
# this file, the study is read in rules/common.smk.


from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/geometry.smk"
include: "rules/analysis.smk"
include: "rules/figures.smk"


# Small CPU jobs that read the tables run where Snakemake runs, not as cluster jobs: every such rule says so
# itself (`localrule: True`), so that the setting holds under a host's prefix too (`use rule * from toroids
# as toroids_*`), where a `localrules` list would name them unprefixed (snakemake/snakemake#2061).


rule all:
    default_target: True
    input:
        FIGURES,
        TABLES,
        PAGES,
    localrule: True
