rule local_energy:
    input:
        weights=f"{RESULTS}/models/{{model_id}}/final.safetensors",
        meta=f"{RESULTS}/models/{{model_id}}/meta.json",
    output:
        f"{RESULTS}/models/{{model_id}}/local_energy.csv",
    log:
        f"{RESULTS}/logs/local_energy/{{model_id}}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        data=model_data,
        local_energy=config["local_energy"],
        device=config["device"],
        chunk_size=config["evaluate"]["chunk_size"],
    script:
        "../workflow/scripts/local_energy.py"


rule sharpness:
    input:
        weights=f"{RESULTS}/models/{{model_id}}/final.safetensors",
        meta=f"{RESULTS}/models/{{model_id}}/meta.json",
    output:
        f"{RESULTS}/models/{{model_id}}/sharpness.csv",
    log:
        f"{RESULTS}/logs/sharpness/{{model_id}}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        mem_mb=config["resources"]["mem_mb"],
        runtime=config["resources"]["runtime"],
    params:
        data=model_data,
        sharpness=config["sharpness"],
        device=config["device"],
        chunk_size=config["evaluate"]["chunk_size"],
    script:
        "../workflow/scripts/sharpness.py"
