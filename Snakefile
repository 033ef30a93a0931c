# toroids: regenerate the figures of Pittorino et al., "Deep Networks on Toroids" (ICML 2022).
#
#   snakemake --cores all                          the default study (config/config.yaml)
#   snakemake --cores all --configfile config/X    another study
#   snakemake --report results/report.html         the HTML report


from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# The default study when no --configfile is given (--config KEY=VALUE then overrides its keys). A study
# file is complete on its own over the schema's defaults: it is never merged over the default study, so
# it means the same from any folder.
if not workflow.overwrite_configfiles:

    configfile: Path(workflow.basedir) / "config" / "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/models.smk"
include: "rules/geometry.smk"
include: "rules/analysis.smk"
include: "rules/figures.smk"


# Small CPU jobs that read the tables: run them where Snakemake runs, not as cluster jobs (the figure
# rules say so themselves: they are generated in rules/figures.smk).
localrules:
    all,
    tables,
    analysis,


rule all:
    default_target: True
    input:
        FIGURES,
        TABLES,
        PAGES,
