# The data sets, before any network job: a job per torchvision folder the study reads, which finds its files
# or downloads them once (data.download), and a job per data set and options, which materializes the
# tensors into one file that every network job of the study reads (toroids.data.save_dataset). Both run
# where Snakemake runs: a download needs the internet that a cluster's nodes may lack, and the network jobs
# then only read a file of the study. Neither takes data.root or data.download as a param: moving the data
# or turning the download off afterwards reruns nothing.


rule data_files:
    output:
        f"{RESULTS}/data/{{source}}.files.json",
    log:
        f"{RESULTS}/logs/data/{{source}}.log",
    wildcard_constraints:
        source=one_of(DATA_SOURCES),
    localrule: True
    conda:
        "../envs/torch.yaml"
    params:
        name=lambda w: DATA_SOURCES[w.source],
    script:
        "../workflow/scripts/data_files.py"


rule dataset:
    input:
        files=lambda w: data_source_record(w.data),
    output:
        f"{RESULTS}/data/{{data}}.safetensors",
    log:
        f"{RESULTS}/logs/data/{{data}}.log",
    wildcard_constraints:
        data=one_of(DATA_SETS),
    localrule: True
    conda:
        "../envs/torch.yaml"
    params:
        spec=lambda w: canonical(DATA_SETS[w.data]),
    script:
        "../workflow/scripts/dataset.py"
