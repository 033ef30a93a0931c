"""Rule dataset: materialize one data set with its options (params.spec) into one file that every network
job of the study reads (toroids.data.save_dataset): loaded once, from data.root or made in memory."""

from toroids import jobs
from toroids.data import save_dataset

log = jobs.start(snakemake)
ops = jobs.operational(snakemake.config)
# rule data_files has found (or downloaded) the files: read them where it found them, never download again
# (with download on, torchvision would fetch into data.root past Debian's Fashion-MNIST and the atomic copy)
data = jobs.load_data({**snakemake.params.spec, **ops["data"], "download": False})
save_dataset(data, snakemake.output[0])
source = ", ".join(data.files) or "memory"
log(
    f"{data.name}: {len(data.y_train)} train and {len(data.y_test)} test samples of shape "
    f"{data.input_shape}, {data.n_classes} classes, fingerprint {data.fingerprint()[:16]}; from {source}"
)
