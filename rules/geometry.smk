rule pair_block:
    input:
        unpack(block_models),
    output:
        paths=f"{RESULTS}/pairs/{{block}}.paths.csv",
        distances=f"{RESULTS}/pairs/{{block}}.distances.csv",
    log:
        f"{RESULTS}/logs/pair_block/{{block}}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        pairs=block_pairs,
        data=block_data,
        geometry=config["geometry"],
        evaluate=config["evaluate"],
        device=config["device"],
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
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        pairs=lambda w: [pair_params(p) for p in MIDPOINT_BLOCKS[w.block]],
        data=lambda w: data_params(MIDPOINT_BLOCKS[w.block][0].left),
        midpoint=config["midpoints"],
        binary_sgd=lambda w: MODELS[MIDPOINT_BLOCKS[w.block][0].left].sgd_options,
        binary_epochs=lambda w: MODELS[MIDPOINT_BLOCKS[w.block][0].left].training[
            "epochs"
        ],
        n_orders=config["geometry"]["n_orders"],
        n_points=config["geometry"]["n_points"],
        test_along_paths=config["geometry"]["test_along_paths"],
        evaluate=config["evaluate"],
        device=config["device"],
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
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        pair=lambda w: pair_params(SECTION_PAIRS[w.pair]),
        data=lambda w: data_params(SECTION_PAIRS[w.pair].left),
        sections=config["sections"],
        evaluate=config["evaluate"],
        device=config["device"],
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
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        triplet=triplet_params,
        data=lambda w: data_params(TRIPLETS[w.triplet].models[0]),
        sections=config["sections"],
        evaluate=config["evaluate"],
        device=config["device"],
    script:
        "../workflow/scripts/triplet_section.py"
