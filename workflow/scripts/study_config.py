"""Rule study_config: the validated config, defaults filled in, as the report shows it."""

import yaml

from toroids import jobs
from toroids.files import atomic_write_text

log = jobs.start(snakemake)
config = dict(snakemake.params.config)
atomic_write_text(snakemake.output[0], yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
log(f"wrote the config of study {config['study']!r}: {len(config['experiments'])} experiments")
