rule train:
    output:
        weights=f"{RESULTS}/models/{{model_id}}/final.safetensors",
        meta=f"{RESULTS}/models/{{model_id}}/meta.json",
    log:
        f"{RESULTS}/logs/train/{{model_id}}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        plan=plan,
        data=model_data,
        device=config["device"],
        chunk_size=config["evaluate"]["chunk_size"],
        checkpoint=lambda w: f"{model_dir(w.model_id)}/epoch_checkpoint.safetensors",
    script:
        "../workflow/scripts/train.py"
