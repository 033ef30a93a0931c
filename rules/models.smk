# Per-model work, done in blocks: a training job trains `resources.models_per_job` models of one experiment
# and sampler and puts them on the toroid; a measuring job computes the local energy and the Hessian trace
# of that many models of one experiment. Small networks then share one process (one import of torch, one
# copy of the data); a GPU study sets 1 and gets a job per model. Every file stays where the README's
# table says (models/{model_id}/…, logs/{train,measure}/{model_id}.log).
#
# What a model depends on is in plan files, written from params by a shell command (a `run:` block would
# start a Python process that parses the workflow again, ~1 s per plan file, measured); a changed setting
# rewrites only the plan files that hold it: plans/{experiment}-{sampler}.train.json and
# plans/{experiment}.measure.json. A block's inputs are its group's or experiment's plan (and, to measure,
# every checkpoint of the experiment), never a list that depends on the block: changing models_per_job
# reruns nothing.


rule train_plan:
    output:
        f"{RESULTS}/plans/{{group}}.train.json",
    log:
        f"{RESULTS}/logs/plans/{{group}}.train.log",
    wildcard_constraints:
        group=one_of(MODEL_GROUPS),
    localrule: True
    # printf only: the smallest env of the workflow
    conda:
        "../envs/plot.yaml"
    params:
        plans=lambda w: plan_json(train_plans(w.group)),
    shell:
        "printf '%s\\n' {params.plans:q} > {output} 2> {log}"


rule measure_plan:
    output:
        f"{RESULTS}/plans/{{experiment}}.measure.json",
    log:
        f"{RESULTS}/logs/plans/{{experiment}}.measure.log",
    wildcard_constraints:
        experiment=one_of(EXPERIMENTS),
    localrule: True
    # printf only: the smallest env of the workflow
    conda:
        "../envs/plot.yaml"
    params:
        plan=lambda w: plan_json(measure_plan(w.experiment)),
    shell:
        "printf '%s\\n' {params.plan:q} > {output} 2> {log}"


for _block in TRAIN_BLOCKS.values():

    rule:
        name:
            f"train_{_block.rule_id}"
        input:
            plans=f"{RESULTS}/plans/{_block.group}.train.json",
            data=data_file(_block.models[0]),
        output:
            train_outputs(_block),
        log:
            [f"{RESULTS}/logs/blocks/train_{_block.rule_id}.log"]
            + [f"{RESULTS}/logs/train/{m}.log" for m in _block.models],
        conda:
            "../envs/torch.yaml"
        threads: config["threads"]
        resources:
            gpu=GPU["train"],
            mem_mb=grown("train", "mem_mb"),
            runtime=grown("train", "runtime"),
        script:
            "../workflow/scripts/train_block.py"


for _block in MEASURE_BLOCKS.values():

    rule:
        name:
            f"measure_{_block.rule_id}"
        input:
            **measure_inputs(_block.experiment),
        output:
            measure_outputs(_block),
        log:
            [f"{RESULTS}/logs/blocks/measure_{_block.rule_id}.log"]
            + [f"{RESULTS}/logs/measure/{m}.log" for m in _block.models],
        # On a cluster, the profile puts up to N of these in one submission, run one after the other:
        # `serial` (a local resource of the SLURM profile; unlimited elsewhere) tells Snakemake so.
        group:
            "flatness"
        conda:
            "../envs/torch.yaml"
        threads: config["threads"]
        resources:
            gpu=GPU["measure"],
            mem_mb=grown("measure", "mem_mb"),
            runtime=grown("measure", "runtime", "flatness"),
            serial=1,
        script:
            "../workflow/scripts/measure_block.py"
