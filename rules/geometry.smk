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
    params:
        pairs=block_pairs,
        data=block_data,
        geometry=config["geometry"],
        evaluate=config["evaluate"],
        device=config["device"],
    script:
        "../workflow/scripts/pair_block.py"
