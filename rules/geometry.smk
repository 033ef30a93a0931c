rule pair_block:
    input:
        unpack(block_models),
    output:
        paths=f"{RESULTS}/pairs/{{block}}.paths.csv",
        distances=f"{RESULTS}/pairs/{{block}}.distances.csv",
    log:
        f"{RESULTS}/logs/pair_block/{{block}}.log",
    # On a cluster, the profile puts up to N of these in one submission, run one after the other:
    # `serial` (a local resource of the SLURM profile; unlimited elsewhere) tells Snakemake so. Declared
    # here, not in the profile, so that it holds under a host's prefix too.
    group:
        "pairs"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU["pair_block"],
        mem_mb=grown("pair_block", "mem_mb"),
        runtime=grown("pair_block", "runtime", "pairs"),
        serial=1,
    params:
        pairs=block_pairs,
        geometry=lambda w: geometry_settings(BLOCKS[w.block][0].left),
        bn_policy=lambda w: bn_policy(BLOCKS[w.block][0].left),
    script:
        "../workflow/scripts/pair_block.py"


rule midpoint:
    input:
        unpack(midpoint_block_models),
    output:
        paths=f"{RESULTS}/midpoints/{{block}}.paths.csv",
        distances=f"{RESULTS}/midpoints/{{block}}.distances.csv",
    log:
        f"{RESULTS}/logs/midpoint/{{block}}.log",
    wildcard_constraints:
        block=one_of(MIDPOINT_BLOCKS),
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU["midpoint"],
        mem_mb=grown("midpoint", "mem_mb"),
        runtime=grown("midpoint", "runtime"),
    params:
        pairs=lambda w: [pair_params(p) for p in MIDPOINT_BLOCKS[w.block]],
        midpoint=lambda w: midpoint_settings(MIDPOINT_BLOCKS[w.block][0].left),
        geometry=lambda w: geometry_settings(MIDPOINT_BLOCKS[w.block][0].left),
        bn_policy=lambda w: bn_policy(MIDPOINT_BLOCKS[w.block][0].left),
    script:
        "../workflow/scripts/midpoint.py"


rule section:
    input:
        unpack(pair_inputs(SECTION_PAIRS)),
    output:
        f"{RESULTS}/sections/{{pair}}.csv",
    log:
        f"{RESULTS}/logs/section/{{pair}}.log",
    wildcard_constraints:
        pair=one_of(SECTION_PAIRS),
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU["section"],
        mem_mb=grown("section", "mem_mb"),
        runtime=grown("section", "runtime"),
    params:
        pair=lambda w: pair_params(SECTION_PAIRS[w.pair]),
        sections=canonical(
            {
                k: config["sections"][k]
                for k in ("resolution", "margin", "representations")
            }
        ),
        bn_policy=lambda w: bn_policy(SECTION_PAIRS[w.pair].left),
    script:
        "../workflow/scripts/section.py"


# The binary figures' sections (paper Figs. 8, 20-23): the plane through three solutions of one sampler,
# raw and with the second and third aligned to the first.
rule triplet_section:
    input:
        unpack(triplet_inputs),
    output:
        f"{RESULTS}/sections/{{triplet}}.triplet.csv",
    log:
        f"{RESULTS}/logs/triplet_section/{{triplet}}.log",
    wildcard_constraints:
        triplet=one_of(TRIPLETS),
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU["triplet_section"],
        mem_mb=grown("triplet_section", "mem_mb"),
        runtime=grown("triplet_section", "runtime"),
    params:
        triplet=triplet_params,
        sections=canonical({k: config["sections"][k] for k in ("resolution", "margin")}),
        bn_policy=lambda w: bn_policy(TRIPLETS[w.triplet].models[0]),
    script:
        "../workflow/scripts/triplet_section.py"
