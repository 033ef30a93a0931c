rule canonicalize:
    input:
        f"{RESULTS}/models/{{model_id}}/final.safetensors",
    output:
        f"{RESULTS}/models/{{model_id}}/normalized.safetensors",
    log:
        f"{RESULTS}/logs/canonicalize/{{model_id}}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow/scripts/canonicalize.py"
